"""`trnbench compare` as a real `python -m bench` subprocess (the ``cli`` fixture): the text
output, and the exit code and one-line error of a refused comparison. The records are those
of tests/unit/test_compare.py (``compare_runs``, ``compare_devices`` in tests/conftest.py)."""

from __future__ import annotations

from tests.integration.browser import open_page


def test_text_output_prints_every_ratio_with_its_inputs_and_labels(cli, compare_devices):
    proc = cli("compare", "--baseline", "device=h100", "--target", "device=trn2",
               "--results", str(compare_devices))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for text in ("per chip", "per instance", "per watt", "per dollar", "p5.48xlarge",
                 "trn2.48xlarge", "55.04", "2026-09-10", "us-east-1", "datasheet", "measured",
                 "nvml-energy-counter", "neuron-power-utilization", "chips per instance"):
        assert text in out, text
    # trn2.48xlarge has no sourced price: per dollar is null with the reason
    assert "no verifiable AWS on-demand price" in " ".join(out.split())


def test_mismatched_runs_are_refused(cli, compare_runs):
    proc = cli("compare", "--baseline", "side=a", "--target", "side=c", "--results",
               str(compare_runs))
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "config.seq" in lines[0] and "16" in lines[0] and "32" in lines[0]


def test_an_instance_of_another_device_is_refused(cli, compare_devices):
    """An H100 instance named for Trainium2 runs: exit 2, one line, nothing on stdout."""
    proc = cli("compare", "--baseline", "device=h100", "--target", "device=trn2",
               "--target-instance", "p5.48xlarge", "--results", str(compare_devices))
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == ("trnbench: error: --target-instance: p5.48xlarge holds h100 "
                           "accelerators but the target runs are on Trainium2 (NC_v3d) (device "
                           "kind trn2); accepted: trn2.48xlarge\n")


def test_compare_page_renders_in_chromium(cli, compare_devices, tmp_path):
    """compare --out of the H100 and Trainium2 records: compare.html in a real browser, with no
    error and no request but the page, its two charts decoded, the loss table there."""
    out = tmp_path / "cmp"
    proc = cli("compare", "--baseline", "device=h100", "--target", "device=trn2",
               "--results", str(compare_devices), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert {p.name for p in out.glob("*.png")} == {"compare.png", "loss.png"}
    opened = open_page(out / "compare.html", "compare-page.png", lambda page: {
        "ratios": page.locator("#ratios + table tbody tr").count(),
        "losses": page.locator("#losses + table tbody tr").all_text_contents(),
        "captions": page.locator("figcaption").all_text_contents()})
    assert opened.problems == []
    assert [u for u in opened.requests if not u.startswith("data:")] == [opened.url]
    assert len(opened.images) == 2 and all(done and w > 0 and h > 0
                                           for done, w, h in opened.images), opened.images
    assert opened.read["ratios"] == 4 and opened.read["captions"] == [
        "target / baseline of each figure (1 = equal)",
        "loss curves of matching runs and their relative difference"]
    [row] = opened.read["losses"]  # copies of one CPU record: the same curve on both sides
    assert row.startswith("model tiny, seq 16, global batch 2") and "above" not in row
    assert opened.screenshot.stat().st_size > 20_000
