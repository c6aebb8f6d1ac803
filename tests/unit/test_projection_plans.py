"""`trnbench project`: an MFU at scale only on plans that hold it; fastest and efficient."""

from __future__ import annotations

import json
import random

import pytest

from bench import cli
from bench.projection import calibration, command, model, presets, search

# (model, tokens, hardware): dense and mixture-of-experts shapes on chips with power figures
CASES = (("llama3-8b", "1e12", "trn2"), ("llama3-70b", "2e12", "h100"),
         ("mixtral-8x7b", "1e12", "trn2"), ("moe-tiny", "1e9", "a100"))


def _scenario(*args: str) -> model.Scenario:
    return command.scenario(cli.build_parser().parse_args(["project", *args]))


def _generated(n: int = 24) -> list[tuple[tuple[str, ...], str]]:
    """``n`` scenarios and node MFUs: each case at random chip counts, node MFUs, batches."""
    rng = random.Random(13)
    out = []
    for i in range(n):
        name, tokens, hw = CASES[i % len(CASES)]
        out.append((("--model", name, "--tokens", tokens, "--hardware", hw,
                     "--chips", str(rng.choice((64, 256, 1024, 4096))),
                     "--global-batch-tokens", str(rng.choice((2**20, 2**22)))),
                    f"{rng.uniform(0.2, 0.7):.3f}"))
    return out


@pytest.mark.parametrize(("args", "node_mfu"), _generated(),
                         ids=lambda a: "-".join(a[1::2][:4:3]) if isinstance(a, tuple) else a)
def test_mfu_at_scale_on_the_pinned_plan_matches_node_mode(args, node_mfu):
    """--node-mfu X selects P with MFU at scale M; --mfu M pinned to P gives the same days,
    chip-hours and energy (within 1%) and X back as the implied node MFU."""
    node = model.project(_scenario(*args, "--node-mfu", node_mfu))
    p = node.plan
    pinned = model.project(_scenario(
        *args, "--mfu", repr(node.mfu_at_scale), "--tp", str(p.tp), "--cp", str(p.cp),
        "--pp", str(p.pp), "--vpp", str(p.vpp), "--dp", str(p.dp), "--ep", str(p.ep),
        "--sharding", p.sharding, "--recompute", p.recompute, "--max-node-mfu", "1"))
    assert pinned.plan.short() == p.short()
    assert pinned.days == pytest.approx(node.days, rel=0.01)
    assert pinned.chip_hours == pytest.approx(node.chip_hours, rel=0.01)
    assert pinned.energy_j_facility == pytest.approx(node.energy_j_facility, rel=0.01)
    assert pinned.plan.node_mfu == pytest.approx(float(node_mfu), rel=0.01)


RAINIER = ("--workload", "claude-3.5-sonnet", "--cluster", "rainier")


def _json(capsys, *args: str) -> dict:
    assert cli.main(["project", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_rainier_at_mfu_04_is_consistent_with_its_plan(capsys):
    cap = calibration.defaults()["max_node_mfu"]
    d = _json(capsys, *RAINIER, "--mfu", "0.4")
    assert d["node_mfu"] <= cap.value and d["node_mfu"] * d["efficiency"] == pytest.approx(0.4)
    assert d["days"] == pytest.approx(
        d["flops"] / (d["chips"] * 667e12 * 0.4 * 0.9) / 86400, rel=1e-9)
    assert any("needs a node MFU of" in n and f"at most {cap.value:.1%}" in n
               for n in d["notes"])
    cal = d["calibration"]
    assert cal["held_out_runs"] >= 10 and cal["worst_abs_error"] <= 0.25


def test_an_mfu_no_plan_can_hold_is_refused(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["project", *RAINIER, "--mfu", "0.9"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.count("\n") == 1
    assert "--mfu" in err and "no plan on 500,000 chips can hold" in err


def test_fastest_and_efficient_plans(capsys):
    d = _json(capsys, *RAINIER, "--node-mfu", "0.4")
    fast, eff = d["plans"]["fastest"], d["plans"]["efficient"]
    assert d["plans"]["headline"] == "fastest" and d["days"] == fast["days"]
    assert fast["plan"] != eff["plan"] and eff["chips"] < fast["chips"]
    assert fast["days"] <= eff["days"] <= fast["days"] * (1 + search.SLOWDOWN)
    assert eff["chip_hours"] < fast["chip_hours"] / 2
    assert eff["energy_mwh_facility"] < fast["energy_mwh_facility"] / 2


def test_help_shows_every_default_with_its_label(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100000")  # no wrapping inside hyphenated words
    with pytest.raises(SystemExit) as exc:
        cli.main(["project", "--help"])
    assert exc.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    defaults = {**presets.DEFAULTS, **calibration.defaults()}
    for key in ("goodput", "global_batch_tokens", "micro_batch", "tp_overlap", "dp_overlap",
                "ep_overlap", "memory_usable", "pue", "server_overhead", "grad_reduce",
                "link_efficiency", "elementwise_bytes", "max_node_mfu"):
        fig = defaults[key]
        assert f"[{fig.label}: {' '.join(fig.source.split())}]" in text, key
    assert "trn2 500 W [estimate:" in text and "rainier: 500,000 chips [report:" in text
