"""`trnbench report` on records of real tiny CPU runs: Markdown, CSV, HTML and PNG outputs.

The records are made once, for the whole module (``report_records``): repeats of one
configuration, a 2-rank torchrun run and its 1-rank partner tagged as a scaling series, runs
with ``--energy modelled`` and ``--energy none``, and a run that fails (lr 1e6). The report runs
in-process; one test runs it as a real ``python -m bench`` subprocess, and one opens report.html
in Debian's chromium (Playwright). Its bad input, which needs no records:
tests/unit/test_report_bad_input.py.
"""

from __future__ import annotations

import base64
import json
import re
import statistics
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from bench.energy.modelled import ModelledMeter
from bench.records import store
from bench.report import build as report_pkg
from bench.report import derived, render, rows
from tests.conftest import invoke, parse_tables, rapl_zone, read_jsonl, ticking_counter
from tests.integration.browser import open_page


def report(records: Path | None, out: Path, *flags: str, cwd: Path | None = None
           ) -> subprocess.CompletedProcess:
    """``trnbench report`` in-process (``invoke``) in ``cwd`` (default: beside ``out``)."""
    args = ("--results", str(records)) if records else ()
    return invoke("report", *args, "--out", str(out), *flags, cwd=cwd or out.parent)


REPORT_RUN = ("run", "--model", "tiny", "--seq", "16", "--steps", "3", "--warmup", "1", "--json")
REPORT_RUNS = {  # name -> extra flags; a name ending in "fail" is expected to fail
    "rep1": ("--batch", "2", "--tag", "scaling=s1"),
    "rep2": ("--batch", "2"),
    "rep3": ("--batch", "2"),
    "ranks2": ("--batch", "2", "--nproc", "2", "--tag", "scaling=s1"),
    "modelled": ("--batch", "2", "--energy", "modelled"),
    "none": ("--batch", "4", "--energy", "none"),
    "ac1": ("--batch", "2", "--ac", "full"),  # rep1-3 but for --ac: a row of its own, n = 2
    "ac2": ("--batch", "2", "--ac", "full"),
    "lr-fail": ("--batch", "2", "--lr", "1e6"),
}


@pytest.fixture(scope="module")
def report_records(tmp_path_factory, cache_dir) -> Path:
    """The results file of ``REPORT_RUNS``: repeats of one configuration, a 2-rank run and its
    1-rank partner tagged as a scaling series, ``--energy modelled`` and ``none``, two runs
    that differ from the repeats only in ``--ac``, and a run that fails (lr 1e6). Each run is
    ``trnbench run`` in-process; the 2-rank run's ranks are real torchrun processes. The CPU
    package energy comes from a fake RAPL tree whose counter ticks in the background, the
    stand-in for a sensor this machine does not expose."""
    work = tmp_path_factory.mktemp("report-records")
    counter = rapl_zone(work / "powercap", "intel-rapl:0", "package-0", 0)
    env = {"TRNBENCH_CACHE_DIR": str(cache_dir), "TRNBENCH_RAPL_ROOT": str(work / "powercap")}
    results = work / "results.jsonl"
    with ticking_counter(counter, 500_000):  # ~50 W
        for name, flags in REPORT_RUNS.items():
            proc = invoke(*REPORT_RUN, *flags, "--results", str(results), cwd=work, env=env)
            assert proc.returncode == (1 if name.endswith("fail") else 0), proc.stderr
    return results


@pytest.fixture(scope="module")
def generated(report_records, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """``trnbench report`` of ``report_records`` (in-process): its output folder and result."""
    out = tmp_path_factory.mktemp("report") / "out"
    proc = invoke("report", "--results", str(report_records), "--out", str(out), cwd=out.parent)
    assert proc.returncode == 0, proc.stderr
    return out, proc


@pytest.fixture(scope="module")
def records(report_records) -> list[dict]:
    return read_jsonl(report_records)


@pytest.fixture(scope="module")
def csv(generated) -> pd.DataFrame:
    return pd.read_csv(generated[0] / "report.csv")


def _row(csv: pd.DataFrame, **where) -> pd.Series:
    match = csv
    for column, value in where.items():
        match = match[match[column] == value]
    assert len(match) == 1, f"{where}: {len(match)} rows"
    return match.iloc[0]


def _ids(records: list[dict], world_size: int = 1, **config) -> list[str]:
    """Run ids of the ok records of ``world_size`` whose config has the given values."""
    return [r["run_id"] for r in records if r["status"] == "ok" and
            r["world_size"] == world_size and
            all(r["config"][k] == v for k, v in config.items())]


def test_writes_every_output_and_a_terminal_summary(generated):
    out, proc = generated
    names = {p.name for p in out.iterdir()}
    assert names == {"report.md", "report.csv", "report.html", "scaling.csv", "failed.csv",
                     "throughput.png", "energy.png", "step_times.png", "scaling.png"}
    for png in out.glob("*.png"):
        assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") and png.stat().st_size > 5000
    assert "trnbench report: 5 configurations, 1 failed run" in proc.stdout
    assert "wrote " in proc.stdout and str(out / "report.html") in proc.stdout
    assert "NonFiniteLoss" in proc.stdout  # the failed run, named with its error


def test_csv_one_row_per_configuration_with_repeat_statistics(csv, records):
    assert list(csv.columns) == rows.COLUMNS + derived.COLUMNS
    assert len(csv) == 5 and list(csv["row"]) == ["R1", "R2", "R3", "R4", "R5"]
    repeated = _row(csv, energy_method="rapl", world_size=1, batch=2, ac="none")
    ids = _ids(records, batch=2, energy="auto", ac="none")
    assert repeated["n"] == 3 and repeated["run_ids"].split() == ids
    tps = [r["tokens_per_s_per_chip"] for r in records if r["run_id"] in ids]
    assert repeated["tokens_per_s_per_chip"] == pytest.approx(statistics.median(tps))
    assert repeated["tokens_per_s_per_chip_min"] == pytest.approx(min(tps))
    assert repeated["tokens_per_s_per_chip_max"] == pytest.approx(max(tps))
    assert repeated["tokens_per_s_per_chip_cv"] == pytest.approx(
        statistics.pstdev(tps) / statistics.fmean(tps))
    assert repeated["mfu"] > 0 and repeated["peak_label"] == "measured"
    assert "torch.matmul" in repeated["peak_source"] and pd.isna(repeated["mfu_note"])
    assert repeated["j_per_token"] > 0 and repeated["energy_label"] == "measured"
    assert repeated["tokens_per_kwh"] > 0 and "cpu-package" in repeated["energy_scope"]
    assert repeated["step_time_method"] == "host-clock" and repeated["warmup_steps"] == 1
    assert repeated["first_step_s"] > 0 and repeated["step_p90_s"] >= repeated["step_p50_s"]
    assert repeated["hosts"] == records[0]["environment"]["host"]
    assert records[0]["environment"]["torch"] in repeated["environment"]
    single = _row(csv, energy_method="modelled")
    assert single["n"] == 1 and pd.isna(single["tokens_per_s_per_chip_cv"])
    assert single["run_ids"] == _ids(records, energy="modelled")[0]


def test_runs_that_differ_only_in_ac_are_two_rows(generated, csv, records):
    """Two runs with --ac full beside three with --ac none, all else equal: two rows, told apart
    by their layout and their trnbench run lines; the n = 2 row has no interval (the reason
    is its footnote), and a warning under the table names every row of fewer than 3 runs."""
    none = _row(csv, energy_method="rapl", world_size=1, batch=2, ac="none")
    full = _row(csv, energy_method="rapl", world_size=1, batch=2, ac="full")
    assert (none["n"], full["n"]) == (3, 2)
    assert full["run_ids"].split() == _ids(records, ac="full")
    assert (none["layout"], full["layout"]) == ("1 process", "1 process, AC full")
    assert none["tokens_per_s_per_chip_ci95_low"] < none["tokens_per_s_per_chip_ci95_high"]
    assert pd.isna(full["tokens_per_s_per_chip_ci95_low"]) and full["tokens_per_s_per_chip_cv"] > 0
    md = (generated[0] / "report.md").read_text()
    headers, _, cells_ = parse_tables(md)[0]
    table = {r[0]: dict(zip(headers, r, strict=True)) for r in cells_}
    ci = table[full["row"]]["95% CI"]
    assert re.fullmatch(r"n/a \[\d+\]", ci) and table[full["row"]]["layout"] == "1 process, AC full"
    assert re.search(re.escape(ci.removeprefix("n/a ")) + r" n = 2: a 95% interval needs at "
                     r"least 3 runs", md)
    few = sorted(csv[csv["n"] < 3]["row"])
    warning = next(line for line in md.splitlines() if line.startswith("**Warning**"))
    assert warning.startswith("**Warning**: fewer than 3 runs: ")
    assert "Too few to publish" in warning
    assert sorted(re.findall(r"(R\d) \(n = \d\)", warning)) == few and none["row"] not in few
    prov = {r[0]: r for r in parse_tables(md)[-1][2]}
    assert "--ac full" in prov[full["row"]][-1] and "--ac none" in prov[none["row"]][-1]


def test_null_figures_are_empty_with_the_reason(csv):
    modelled = _row(csv, energy_method="modelled")
    assert pd.isna(modelled["j_per_token"]) and pd.isna(modelled["tokens_per_kwh"])
    assert "modelled: no table power for device kind 'cpu'" in modelled["energy_note"]
    off = _row(csv, energy_method="none")
    assert off["batch"] == 4 and pd.isna(off["j_per_token"])
    assert off["energy_note"] == "none: not measured (--energy none)"


def test_multi_rank_row_and_scaling_table(generated, csv, records):
    ranks = _row(csv, world_size=2)
    # two ranks on one CPU are one chip: its per-chip throughput is the whole CPU's
    assert ranks["chips"] == 1 and ranks["parallel"] == "ddp" and ranks["nodes"] == 1
    # torchrun gives each of several CPU ranks one thread: not a repeat of a 2-thread run
    assert ranks["threads"] == 1
    threads = {r["device"]["versions"]["threads"] for r in records if r["status"] == "ok"}
    assert set(csv["threads"].astype(str)) == threads
    scaling = pd.read_csv(generated[0] / "scaling.csv")
    assert list(scaling["series"]) == ["s1", "s1"] and list(scaling["world_size"]) == [1, 2]
    tps = {r["world_size"]: r["tokens_per_s"] for r in records
           if r.get("tags", {}).get("scaling") == "s1"}
    assert list(scaling["tokens_per_s_per_rank"]) == pytest.approx([tps[1], tps[2] / 2])
    assert list(scaling["scaling_efficiency"]) == pytest.approx([1.0, tps[2] / 2 / tps[1]])
    assert list(scaling["baseline_world_size"]) == [1, 1]


def test_markdown_shows_labels_methods_runs_and_failures(generated, records):
    md = (generated[0] / "report.md").read_text()
    # energy setting (--energy): the one run flag the rows differ in beyond those always shown
    header = ("| row | model | device | precision | threads | ranks | layout | batch | seq | "
              "compile | energy setting | n | tokens/s per chip | 95% CI | min–max | CV % | "
              "tokens/s per instance | MFU % | tokens/J | energy | $/M tokens | step p50 ms | "
              "step p90 ms | first step s | peak mem GiB | flag |")
    assert header in md
    # the repeated rapl row: numbers alone in their cells, the energy label in its own
    num = r"-?[\d,.]+"
    assert re.search(rf"\| 3 \| {num} \| {num}–{num} \| {num}–{num} \| {num} \| n/a \[\d\] \| "
                     rf"{num} \| {num} \| rapl, measured \|", md), md
    assert re.search(r"\[\d\] modelled: no table power for device kind 'cpu' \(the CPU has "
                     r"none\)", md)
    assert re.search(r"\[\d\] none: not measured \(--energy none\)", md)
    assert re.search(r"\[\d\] 1 run: no spread over repeats", md)
    assert "host-clock" in md and "first step" in md
    for r in records:
        assert r["run_id"] in md  # every run behind a row, and the failed one
    assert "NonFiniteLoss: loss became nan" in md and "## Failed runs" in md
    assert "## How each figure was made" in md and "modelled: table power x chips" in md
    assert "![" in md and "(throughput.png)" in md and "(step_times.png)" in md
    # a 1-rank point of a series: efficiency 100 by definition (a slow machine: under 100 tok/s)
    assert re.search(r"\| s1 \| tiny \| .* \| 1 \| 1 \| 1 \| [\d,.]+ \| [\d,.]+ \| 100 \| 1 \|", md)


def test_html_is_self_contained(generated):
    out = generated[0]
    page = (out / "report.html").read_text()
    text = re.sub(r"data:[^\"']*", "data:", page)  # base64 may hold '//' by chance
    assert not re.search(r"https?:|ftp:|file:|//[a-z]", text, re.IGNORECASE)
    assert "<script" not in page
    sources = re.findall(r'(?:src|href)=["\']([^"\']*)', page)
    assert sources and all(s.startswith("data:") for s in sources)
    images = re.findall(r'<img src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 4
    assert {base64.b64decode(i) for i in images} == {p.read_bytes() for p in out.glob("*.png")}
    assert "How each figure was made" in page and "NonFiniteLoss" in page
    assert page.count("<tr") == 1 + 5 + 1 + 2 + 1 + 1 + 1 + 5  # heads and rows of 4 tables
    assert "<p class='warning'><strong>Warning</strong>: fewer than 3 runs" in page


@pytest.mark.parametrize(("threshold", "flagged"), [("0", True), ("1000", False)])
def test_cv_threshold_flags_repeated_rows(report_records, tmp_path, threshold, flagged):
    proc = report(report_records, tmp_path / "out", "--cv-threshold", threshold)
    assert proc.returncode == 0, proc.stderr
    csv = pd.read_csv(tmp_path / "out" / "report.csv")
    repeated = _row(csv, energy_method="rapl", world_size=1, ac="none")
    # the threshold decides the CV flags; a run's own flag (on a busy machine, a CPU peak
    # that moved around its window) may flag the row whatever the threshold
    reason = repeated["flag_reason"] if isinstance(repeated["flag_reason"], str) else ""
    cv_flagged = re.search(r"(tokens/s per chip|J/token|step p50) CV", reason) is not None
    assert cv_flagged is flagged and repeated["cv_threshold"] == float(threshold)
    assert bool(repeated["flagged"]) is (flagged or bool(reason))
    single = csv[csv["n"] == 1]["flag_reason"].fillna("")
    assert not single.str.contains(" CV ").any()  # one run has no spread to flag
    md = (tmp_path / "out" / "report.md").read_text()
    assert ("| flagged [" in md and "tokens/s per chip CV" in md) is flagged
    assert 'class="flagged"' in (tmp_path / "out" / "report.html").read_text() or not flagged


def test_modelled_energy_is_labelled_not_measured(report_records):
    """This CPU has no table power, so a modelled reading with joules cannot come from a run
    here: the real ModelledMeter gives an H100's block, put in place of the rapl readings."""
    meter = ModelledMeter("h100", chips=2)  # the 2-rank run: 2 chips
    meter.open()
    frame = store.load(report_records)
    ranks = frame["world_size"] == 2
    block = meter.close().with_tokens(int(frame.loc[ranks, "tokens"].iloc[0])).to_json()
    for key in ("method", "j_per_token", "tokens_per_kwh", "scope", "reason"):
        frame.loc[ranks, f"energy.{key}"] = block[key]
    built = report_pkg.build(frame, [str(report_records)], 0.05)
    md = render.markdown(built)
    assert re.search(r"\| [\d,.]+ \| modelled \(estimate, not measured\) \|", md)
    assert "--energy modelled" in md and "modelled: 700 W x 2 chip(s) x window time" in md
    row = _row(built.table, world_size=2)
    assert row["energy_label"] == "modelled"


def test_unknown_peak_is_n_a_with_the_reason(report_records):
    """What the runner stores for a device without a known peak (peak null, MFU null), in
    place of the 2-rank run's measured CPU peak."""
    frame = store.load(report_records)
    ranks = frame["world_size"] == 2
    frame.loc[ranks, ["mfu", "peak.value", "peak.label", "peak.source"]] = None
    built = report_pkg.build(frame, [str(report_records)], 0.05)
    row = _row(built.table, world_size=2)
    assert pd.isna(row["mfu"]) and row["peak_label"] == "" and row["mfu_n"] == 0
    md = render.markdown(built)
    assert (f"] no peak FLOP/s known for {row['device']} in fp32; MFU is null, never a "
            f"guessed peak") in md
    headers, _, cells_ = parse_tables(md)[0]  # the results table, as a Markdown reader sees it
    mfu = [dict(zip(headers, r, strict=True))["MFU %"] for r in cells_]
    assert sum(m.startswith("n/a [") for m in mfu) == 1  # the other rows keep theirs
    assert all(float(m) > 0 for m in mfu if not m.startswith("n/a"))


def test_failed_runs_only_still_report_them(tmp_path, records):
    path = tmp_path / "failed.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records if r["status"] != "ok"))
    proc = report(path, tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"report.md", "report.html",
                                                             "report.csv", "failed.csv"}
    md = (tmp_path / "out" / "report.md").read_text()
    assert "No ok runs." in md and "NonFiniteLoss" in md
    assert pd.read_csv(tmp_path / "out" / "report.csv").empty


def test_several_results_files_and_a_corrupt_line(tmp_path, records):
    ok, bad = tmp_path / "ok.jsonl", tmp_path / "bad.jsonl"
    ok.write_text("".join(json.dumps(r) + "\n" for r in records if r["status"] == "ok"))
    bad.write_text("".join(json.dumps(r) + "\n" for r in records if r["status"] != "ok")
                   + '{"run_id": "trunc\n')
    proc = subprocess.run([sys.executable, "-m", "bench", "report", "--results", str(ok),
                           str(bad), "--out", "out"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)  # the real entry point
    assert proc.returncode == 0, proc.stderr
    assert f"{bad}:2: skipped corrupt record" in proc.stderr  # line 2, after the failed run
    csv = pd.read_csv(tmp_path / "out" / "report.csv")
    assert len(csv) == 5 and set(csv["source_files"]) == {str(ok)}
    failed = pd.read_csv(tmp_path / "out" / "failed.csv")
    assert list(failed["source_file"]) == [str(bad)] and failed["error"][0].startswith("NonFinite")
    assert f"from {ok}, {bad}:" in (tmp_path / "out" / "report.md").read_text()


# --- report.html in a real browser (tests/integration/browser.py: Debian's chromium, headless,
# driven by Playwright) ---------------------------------------------------------------------------
# The page must render its tables and decode its charts with no page error, no console error and
# no network request at all; its full-page screenshot is kept as an artifact.


def _read_report(page) -> dict:
    return {
        "rows": page.locator("#results + table tbody tr").count(),
        "cells": page.eval_on_selector_all("#results + table tbody tr",
                                           "rows => rows.map(r => r.cells.length)"),
        "headers": page.eval_on_selector_all("#results + table th",
                                             "h => h.map(e => e.textContent)"),
        "failed": page.locator("#failed + table tbody tr").count(),
        "scaling": page.locator("#scaling + table tbody tr").count(),
        "methods": page.locator("#methods + dl dt").all_text_contents(),
        "flagged": page.locator("tr.flagged").all_text_contents(),
        "warnings": page.locator("p.warning").all_text_contents(),
    }


def test_report_renders_in_chromium_without_errors_or_requests(generated):
    page_dir = generated[0]
    opened = open_page(page_dir / "report.html", "report.png", _read_report)
    assert opened.problems == []
    assert [u for u in opened.requests if not u.startswith("data:")] == [opened.url]
    csv = pd.read_csv(page_dir / "report.csv")
    read = opened.read
    assert read["rows"] == len(csv) == 5
    assert set(read["cells"]) == {len(read["headers"])}
    assert {"MFU %", "tokens/J", "layout", "peak mem GiB"} <= set(read["headers"])
    assert len(opened.images) == len(list(page_dir.glob("*.png"))) == 4
    assert all(done and w > 0 and h > 0 for done, w, h in opened.images), opened.images
    assert read["failed"] == 1 and read["scaling"] == 2
    assert "How each figure was made" not in read["methods"] and "MFU" in read["methods"]
    assert all("flagged [" in t for t in read["flagged"])
    results, scaling = read["warnings"]  # under the results and the scaling table
    assert results.startswith("Warning: fewer than 3 runs: R")
    assert scaling.startswith("Warning: fewer than 3 runs: s1, 1 rank (n = 1), s1, 2 ranks")
    shot = opened.screenshot
    assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 20_000


NARROW = """() => {
  const table = document.querySelector('#results + table');
  const box = () => table.getBoundingClientRect();
  const first = () => [...table.querySelectorAll('tr')]
    .map(r => r.cells[0].getBoundingClientRect().left);
  const before = {page: document.documentElement.scrollWidth, scroll: table.scrollWidth,
                  client: table.clientWidth, right: box().right, left: box().left, first: first()};
  table.scrollLeft = table.scrollWidth;
  const cells = table.querySelectorAll('thead th');
  return {...before, firstScrolled: first(), scrolled: table.scrollLeft,
          lastRight: cells[cells.length - 1].getBoundingClientRect().right};
}"""


def test_the_results_table_scrolls_in_its_box_at_800_px_with_its_row_ids_in_view(generated):
    """At 800 px the page itself does not scroll sideways: a table wider than the page scrolls
    inside its own box, and the row id column stays where it is while it does (the screenshot
    shows the table scrolled to its end)."""
    opened = open_page(generated[0] / "report.html", "report-800px.png",
                       lambda page: page.evaluate(NARROW), width=800)
    got = opened.read
    assert opened.problems == []
    assert got["page"] <= 800  # no sideways scroll of the page
    assert got["scroll"] > got["client"] and got["right"] <= 800  # the table scrolls in its box
    assert got["scrolled"] > 0 and got["lastRight"] <= got["right"] + 1  # to its last column
    assert got["firstScrolled"] == pytest.approx(got["first"], abs=1)  # row ids stay in view
    assert set(got["first"]) == {got["left"]}
