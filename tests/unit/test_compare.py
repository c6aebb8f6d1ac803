"""`trnbench compare` end to end: real CPU runs, and hand-made GPU/Trainium records.

The CPU records come from real `trnbench run` calls of the CLI's entry point (in this process,
to save two CPU cores the interpreter start-ups: ``compare_runs`` in tests/conftest.py); the
exit code, the one-line error and the text output are checked on real `python -m bench`
subprocesses in tests/integration/test_compare_cli.py. Cross-device ratios need records of an
H100, an H200 and a Trainium2, which cannot be measured here: those are copies of a real record
with the device, throughput and energy blocks replaced (``compare_devices``, the same schema the
runner writes), and every expected ratio is computed by hand from the numbers put in.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import replace
from datetime import date

import pytest

from bench.cli import main
from bench.inputs.config import ConfigError
from bench.records import store
from bench.records.record import Record
from bench.report import losses, prices
from tests.conftest import ROOT, device_record, read_jsonl


def trnbench(*args: str) -> int:
    """``trnbench ARGS`` through the CLI's entry point in this process; its exit code (the
    callers read its output from pytest's capture, ``capsys``)."""
    try:
        return main(list(args))
    except SystemExit as e:
        return e.code


def compare_json(capsys, *args: str) -> dict:
    capsys.readouterr()
    code = trnbench("compare", *args, "--json")
    out = capsys.readouterr()
    assert code == 0, out.err
    return json.loads(out.out)


def by_name(result: dict) -> dict[str, dict]:
    return {r["name"]: r for r in result["ratios"]}


def test_real_runs_per_chip_ratio_is_the_ratio_of_measured_rates(capsys, compare_runs):
    a, b, _ = read_jsonl(compare_runs)
    result = compare_json(capsys, "--baseline", "tags.side=a", "--target", "side=b",
                          "--results", str(compare_runs))
    r = by_name(result)
    assert r["per_chip"]["ratio"] == pytest.approx(
        b["tokens_per_s_per_chip"] / a["tokens_per_s_per_chip"])
    assert result["baseline"]["run_ids"] == [a["run_id"]]
    assert result["baseline"]["device"]["kind"] == "cpu"
    for key in ("per_instance", "per_dollar"):  # no AWS instance holds "the host CPU"
        assert r[key]["ratio"] is None and "no AWS instance" in r[key]["reason"]
    if a["energy"]["joules"] is None:  # no readable RAPL counters on this host
        assert r["per_watt"]["ratio"] is None
        assert "no energy measured" in r["per_watt"]["reason"]
    else:
        assert r["per_watt"]["ratio"] == pytest.approx(
            a["energy"]["j_per_token"] / b["energy"]["j_per_token"])
    # a run id selects the same runs
    by_id = compare_json(capsys, "--baseline", a["run_id"], "--target", b["run_id"],
                         "--results", str(compare_runs))
    assert by_name(by_id)["per_chip"]["ratio"] == r["per_chip"]["ratio"]


def test_cross_device_ratios_match_a_hand_computation(capsys, compare_devices, tmp_path):
    user = tmp_path / "prices.toml"
    user.write_text('[prices."trn2.48xlarge"]\nusd_per_hour = 40.0\ndate = "2026-10-01"\n'
                    'source = "test price"\n')
    result = compare_json(capsys, "--baseline", "device.kind=h100", "--target", "device=trn2",
                          "--results", str(compare_devices), "--prices", str(user))
    r = by_name(result)
    h100 = statistics.median([1000.0, 1200.0, 1100.0])  # median over the three runs
    trn2 = statistics.median([800.0, 900.0])
    assert r["per_chip"]["ratio"] == pytest.approx(trn2 / h100)
    assert r["per_instance"]["ratio"] == pytest.approx(trn2 * 16 / (h100 * 8))
    h100_tpj = statistics.median([1 / 0.5, 1 / 0.4, 1 / 0.45])
    assert r["per_watt"]["ratio"] == pytest.approx((1 / 0.3) / h100_tpj)
    assert r["per_watt"]["label"] == "estimate"  # Neuron: utilisation x estimated max power
    assert r["per_dollar"]["ratio"] == pytest.approx(
        (trn2 * 16 * 3600 / 40.0) / (h100 * 8 * 3600 / 55.04))
    assert result["baseline"]["instance"]["name"] == "p5.48xlarge"
    assert result["target"]["instance"]["name"] == "trn2.48xlarge"
    base_price = result["baseline"]["figures"]["per_dollar"]["inputs"][1]
    assert (base_price["value"], base_price["label"]) == (55.04, "datasheet")
    assert (base_price["region"], base_price["date"]) == ("us-east-1", "2026-09-10")
    assert "AWS EC2 price list" in base_price["source"]
    user_price = result["target"]["figures"]["per_dollar"]["inputs"][1]
    assert user_price == {"name": "price", "value": 40.0, "unit": "USD per hour",
                          "label": "user", "region": None, "date": "2026-10-01",
                          "source": "test price"}
    assert not any("energy scopes" in w for w in result["warnings"])  # both accelerators


def test_modelled_energy_is_labelled_modelled(capsys, compare_devices):
    result = compare_json(capsys, "--baseline", "device=h100", "--target", "device=h200",
                          "--results", str(compare_devices))
    per_watt = by_name(result)["per_watt"]
    assert per_watt["label"] == "modelled"
    assert per_watt["ratio"] == pytest.approx((1 / 0.6) / statistics.median(
        [1 / 0.5, 1 / 0.4, 1 / 0.45]))
    assert result["target"]["figures"]["per_watt"]["inputs"][0]["label"] == "modelled"
    assert any("energy scopes" in w for w in result["warnings"])
    assert result["target"]["instance"]["name"] == "p5en.48xlarge"  # the on-demand H200


def test_instance_override_and_unpriced_instance(capsys, compare_devices):
    result = compare_json(capsys, "--baseline", "device=h100", "--target", "device=h200",
                          "--target-instance", "p5e.48xlarge", "--results", str(compare_devices))
    r = by_name(result)
    assert result["target"]["instance"]["how"] == "--target-instance"
    assert r["per_instance"]["ratio"] == pytest.approx(1500.0 / 1100.0)  # 8 chips each
    assert r["per_dollar"]["ratio"] is None
    assert "p5e.48xlarge" in r["per_dollar"]["reason"]
    code = trnbench("compare", "--baseline", "device=h100", "--target", "device=h200",
                    "--target-instance", "x9.huge", "--results", str(compare_devices))
    assert code == 2 and "--target-instance" in capsys.readouterr().err


@pytest.mark.parametrize(("args", "device"), [
    (["--baseline", "device=h100", "--target", "device=trn2", "--target-instance",
      "p5.48xlarge"], "Trainium2 (NC_v3d) (device kind trn2); accepted: trn2.48xlarge"),
    (["--baseline", "side=a", "--target", "side=b", "--target-instance", "trn2.48xlarge"],
     "(device kind cpu); accepted: none known for cpu"),  # a CPU priced as a trn2.48xlarge
])
def test_an_instance_that_does_not_hold_the_device_is_refused(capsys, compare_runs,
                                                               compare_devices, args, device):
    capsys.readouterr()
    code = trnbench("compare", *args, "--results", str(compare_runs), str(compare_devices))
    out = capsys.readouterr()
    lines = out.err.strip().splitlines()
    assert code == 2 and out.out == "" and len(lines) == 1
    assert lines[0].startswith("trnbench: error: --target-instance: ") and device in lines[0]


def test_loss_curves_of_matching_runs_are_compared(capsys, compare_runs):
    """Two real CPU runs of one configuration: the same curve, step for step (difference 0)."""
    a, b, _ = read_jsonl(compare_runs)
    loss = compare_json(capsys, "--baseline", "side=a", "--target", "side=b", "--results",
                        str(compare_runs))["losses"]
    [pair] = loss["pairs"]
    assert pair["configuration"] == {"model": "tiny", "seq": "16", "global batch": "2",
                                     "lr": "0.0003", "seed": "0", "data": "synthetic"}
    assert pair["steps"] == len(a["losses"]) == 4  # 1 warm-up + 3 timed steps
    assert pair["baseline"]["losses"] == a["losses"] and pair["target"]["losses"] == b["losses"]
    assert pair["max_relative_difference"] == 0 and not pair["flagged"]
    assert loss["tolerance"] == losses.TOLERANCE and loss["reason"] is None


def test_loss_curves_that_differ_are_flagged(capsys, compare_runs, tmp_path):
    """A device whose losses are 8% above the CPU's at every step: flagged above the default
    tolerance, with the step; not with --loss-tolerance 0.1."""
    a = read_jsonl(compare_runs)[0]
    path = tmp_path / "runs.jsonl"
    store.append(path, Record.from_json(a))
    other = device_record(a, "h100", "NVIDIA H100 80GB HBM3", 1000.0)
    store.append(path, replace(other, losses=[v * 1.08 for v in a["losses"]]))
    result = compare_json(capsys, "--baseline", "device=cpu", "--target", "device=h100",
                          "--results", str(path))
    [pair] = result["losses"]["pairs"]
    assert pair["max_relative_difference"] == pytest.approx(0.08) and pair["flagged"]
    assert any(w.startswith("loss curves differ: largest relative difference 8.0% at step ")
               and "above the tolerance 5%" in w for w in result["warnings"])
    relaxed = compare_json(capsys, "--baseline", "device=cpu", "--target", "device=h100",
                           "--results", str(path), "--loss-tolerance", "0.1")
    assert not relaxed["losses"]["pairs"][0]["flagged"]
    assert not any(w.startswith("loss curves") for w in relaxed["warnings"])


def test_every_run_flag_that_differs_is_a_warning(capsys, compare_runs, tmp_path):
    """A target stored with --ac full beside a run with --ac none, and an older record without
    the ac field (it ran with the default, none): a warning for the first pair only."""
    a = read_jsonl(compare_runs)[0]
    path = tmp_path / "runs.jsonl"
    old = {**a, "run_id": "old0", "tags": {"side": "old"},
           "config": {k: v for k, v in a["config"].items() if k != "ac"}}
    full = {**a, "run_id": "full0", "tags": {"side": "full"}, "config": {**a["config"],
                                                                         "ac": "full"}}
    for r in (a, old, full):
        store.append(path, Record.from_json(r))
    warned = compare_json(capsys, "--baseline", "side=a", "--target", "side=full",
                          "--results", str(path))["warnings"]
    assert "ac differs (config.ac): baseline none, target full" in warned
    assert not any("differs" in w for w in compare_json(
        capsys, "--baseline", "side=a", "--target", "side=old", "--results", str(path))[
        "warnings"])


LOSS_CURVES = ROOT / "results" / "cpu" / "2026-12-05-loss-curves.jsonl"


def test_the_loss_tolerance_lies_between_design_and_a_run_that_does_not_train():
    """The measurement behind losses.TOLERANCE (docs/methodology.md, "Loss curves across
    devices"), recomputed from its records: runs that differ only in precision or in seed stay
    under the tolerance over 35 steps, a run that does not train (lr 1e-9) is far over it."""
    runs = {(r["config"]["model"], r["config"]["precision"], r["config"]["seed"],
             r["config"]["lr"]): r["losses"] for r in read_jsonl(LOSS_CURVES)}
    assert {len(c) for c in runs.values()} == {35}
    precision, seed, untrained = [], [], []
    for model in ("tiny", "moe-tiny"):
        def curve(p: str, s: int, lr: float = 3e-4, m: str = model) -> list[float]:
            return runs[(m, p, s, lr)]

        precision += [losses.largest_difference(curve("fp32", s), curve("bf16", s))[0]
                      for s in (0, 1)]
        seed += [losses.largest_difference(curve(p, 0), curve(p, 1))[0] for p in ("fp32", "bf16")]
        untrained.append(losses.largest_difference(curve("fp32", 0), curve("fp32", 0, 1e-9)))
    assert max(precision) == pytest.approx(0.0003, abs=5e-5)  # the table's 0.03%
    assert max(seed) == pytest.approx(0.0312, abs=5e-4)  # 3.1%
    assert [(round(d, 3), at) for d, at in untrained] == [(0.497, 35), (0.502, 35)]
    assert max(precision + seed) < losses.TOLERANCE < min(d for d, _ in untrained) / 5


def test_allow_mismatch_compares_with_a_warning(capsys, compare_runs):
    warnings = compare_json(capsys, "--baseline", "side=a", "--target", "side=c", "--results",
                            str(compare_runs), "--allow-mismatch")["warnings"]
    assert any("config.seq" in w and "16" in w and "32" in w for w in warnings)
    code = trnbench("compare", "--baseline", "side=a", "--target", "side=c", "--results",
                    str(compare_runs), "--allow-mismatch")
    assert code == 0 and "config.seq differs" in capsys.readouterr().err


@pytest.mark.parametrize("args, field", [
    (["--baseline", "model=nope", "--target", "side=a"], "--baseline"),
    (["--baseline", "side=a", "--target", "colour=red"], "--target"),
    (["--baseline", "side=a,", "--target", "side=b"], "--baseline"),
    (["--baseline", "model=tiny", "--target", "side=b"], "config.seq"),  # a, b (16), c (32)
])
def test_bad_queries_are_one_line_exit_2(capsys, compare_runs, args, field):
    capsys.readouterr()
    code = trnbench("compare", *args, "--results", str(compare_runs))
    out = capsys.readouterr()
    assert code == 2 and out.out == ""
    lines = out.err.strip().splitlines()
    assert len(lines) == 1 and field in lines[0]


def test_a_side_on_several_devices_is_refused(capsys, compare_runs, compare_devices):
    code = trnbench("compare", "--baseline", "seq=16", "--target", "device=h100",
                    "--results", str(compare_runs), str(compare_devices))
    err = capsys.readouterr().err
    assert code == 2 and "--baseline" in err and "several devices" in err


def test_missing_results_file(capsys, tmp_path):
    code = trnbench("compare", "--baseline", "a", "--target", "b", "--results",
                    str(tmp_path / "none.jsonl"))
    assert code == 2 and "--results" in capsys.readouterr().err


def test_price_table_carries_source_region_and_date():
    table = prices.load()
    for inst in table.values():
        assert inst.chips in (8, 16) and inst.chips_source
        if inst.price is None:
            assert inst.price_missing
            continue
        p = inst.price
        assert p.usd_per_hour > 0 and p.region == "us-east-1" and p.label == "datasheet"
        assert date.fromisoformat(p.date) and p.source
    assert table["p5.48xlarge"].price.usd_per_hour == 55.04  # after the June 2025 cut
    assert table["trn2.48xlarge"].price is None
    lookup = {(k, n): prices.for_device(table, k, n).name for k, n in (
        ("h100", "NVIDIA H100 80GB HBM3"), ("h200", "NVIDIA H200"), ("trn1", "Trainium"),
        ("trn2", "Trainium2"), ("a100", "NVIDIA A100-SXM4-80GB"),
        ("a100", "NVIDIA A100-SXM4-40GB"))}
    assert list(lookup.values()) == ["p5.48xlarge", "p5en.48xlarge", "trn1.32xlarge",
                                     "trn2.48xlarge", "p4de.24xlarge", "p4d.24xlarge"]
    assert prices.for_device(table, "cpu", "AMD EPYC") is None


@pytest.mark.parametrize("text, message", [
    ("[prices", "malformed TOML"),
    ('[prices."p5.48xlarge"]\nusd_per_hour = -1\ndate = "2026-01-01"\n', "usd_per_hour"),
    ('[prices."p5.48xlarge"]\nusd_per_hour = 50\n', "date"),
    ('[prices."p5.48xlarge"]\nusd_per_hour = 50\ndate = "2026-01-01"\ncost = 1\n', "'cost'"),
    ('[prices."x.large"]\nusd_per_hour = 5\ndate = "2026-01-01"\n', "chips"),
    ("title = 1\n", "[prices"),
])
def test_user_price_file_is_checked(tmp_path, text, message):
    f = tmp_path / "p.toml"
    f.write_text(text)
    with pytest.raises(ConfigError) as e:
        prices.load(f)
    assert e.value.field == "--prices" and message in str(e.value)


def test_user_price_file_adds_an_instance(tmp_path):
    f = tmp_path / "p.toml"
    f.write_text('[prices."p5.4xlarge"]\nusd_per_hour = 6.88\ndate = "2026-09-10"\n'
                 'chips = 1\ndevice = "h100"\nregion = "us-east-1"\n')
    inst = prices.load(f)["p5.4xlarge"]
    assert (inst.chips, inst.device, inst.price.label) == (1, "h100", "user")
    assert inst.price.source == str(f)
    # a user instance is used when named, never instead of the table's default
    assert prices.for_device(prices.load(f), "h100", "NVIDIA H100 80GB HBM3").name == \
        "p5.48xlarge"
