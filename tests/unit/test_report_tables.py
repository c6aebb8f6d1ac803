"""The report's tables as a reader gets them: a Markdown parser (markdown-it-py, the GFM
table rule) reads the Markdown table back to the numbers of the CSV, numeric columns
right-aligned, n/a reasons said once as footnotes, and text cells safe to paste (HTML
escaped, formula-leading text neutralised). Built in-process from the stored CPU sweep."""

from __future__ import annotations

import argparse
import io
import math
import shlex
from datetime import datetime, timezone

import pandas as pd
import pytest

from bench.inputs import config
from bench.inputs.errors import ConfigError
from bench.records import metrics, store
from bench.report import build as report_pkg
from bench.report import cells, derived, plots, render, rows
from bench.train import command as run_command
from tests.conftest import ROOT, parse_tables

RESULTS = ROOT / "results" / "cpu" / "2026-11-25.jsonl"

# Markdown column -> (CSV column, scale, decimals shown: None = 3 significant figures)
NUMBERS = {
    "tokens/s per chip": ("tokens_per_s_per_chip", 1, 0),
    "MFU %": ("mfu", 100, None), "CV %": ("tokens_per_s_per_chip_cv", 100, None),
    "step p50 ms": ("step_p50_s", 1e3, None), "step p90 ms": ("step_p90_s", 1e3, None),
    "first step s": ("first_step_s", 1, None), "speedup vs R3": ("speedup", 1, None),
    "threads": ("threads", 1, 0), "ranks": ("world_size", 1, 0), "batch": ("batch", 1, 0),
    "seq": ("seq", 1, 0), "n": ("n", 1, 0),
}
RANGES = {"95% CI": ("tokens_per_s_per_chip_ci95_low", "tokens_per_s_per_chip_ci95_high"),
          "min–max": ("tokens_per_s_per_chip_min", "tokens_per_s_per_chip_max")}


@pytest.fixture(scope="module")
def built() -> report_pkg.Report:
    return report_pkg.build(store.load(RESULTS), [str(RESULTS)], metrics.CV_FLAG, "R3")


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def _shown(value: float, decimals: int | None) -> float:
    """``value`` rounded as the table shows it."""
    if decimals is not None:
        return round(value, decimals)
    return round(value, 2 - math.floor(math.log10(abs(value))))


def test_markdown_table_reads_back_to_the_csv_numbers(built):
    md = render.markdown(built)
    csv = pd.read_csv(io.StringIO(render.csv(built.table)))
    headers, aligns, rows = parse_tables(md)[0]
    assert len(rows) == len(csv) == 5
    numeric = cells.results(built.table).numeric
    assert {h for h, a in zip(headers, aligns, strict=True) if a == "right"} == numeric
    checked = 0
    for cells_, (_, r) in zip(rows, csv.iterrows(), strict=True):
        cell = dict(zip(headers, cells_, strict=True))
        assert cell["row"] == r["row"] and cell["model"] == r["model"]
        for column, (source, scale, decimals) in NUMBERS.items():
            if cell[column].startswith("n/a"):
                assert pd.isna(r[source]), column
                continue
            assert _number(cell[column]) == pytest.approx(_shown(r[source] * scale, decimals))
            checked += 1
        for column, (low, high) in RANGES.items():
            if cell[column].startswith("n/a"):
                assert r["n"] == 1
                continue
            lo, hi = cell[column].split("–")
            assert _number(lo) == round(r[low]) and _number(hi) == round(r[high])
            checked += 1
    assert checked > 50


def test_a_reason_shared_by_every_row_is_one_footnote(built):
    table = cells.results(built.table)
    energy = [n for n in table.footnotes if "RAPL" in n]
    assert len(energy) == 1  # said once, referenced from every row
    ref = f"n/a [{table.footnotes.index(energy[0]) + 1}]"
    assert (table.frame["tokens/J"] == ref).all()
    assert all(len(n) < 200 for n in table.footnotes)
    md = render.markdown(built)
    assert md.count("no RAPL powercap tree") == 1


def test_ci_is_the_t_interval_of_the_repeat_mean(built):
    row = built.table.set_index("row").loc["R4"]
    values = [float(v) for v in built.groups["R4"]["tokens_per_s_per_chip"]]
    mean, s = sum(values) / 3, pd.Series(values).std()
    half = 4.303 * s / math.sqrt(3)  # t(0.975, 2)
    assert row["tokens_per_s_per_chip_ci95_low"] == pytest.approx(mean - half)
    assert row["tokens_per_s_per_chip_ci95_high"] == pytest.approx(mean + half)
    assert "t(0.975, n-1)" in row["ci_method"]


def test_header_names_when_what_and_how_to_reproduce(built):
    built.command = "trnbench report --results x.jsonl"
    header = dict(render.header(built))
    assert header["measured"].startswith("2026-11-25T14:38") and ".." in header["measured"]
    assert "AMD EPYC (cpu)" in header["hardware"] and "no AWS instance" in header["hardware"]
    assert "torch 2." in header["software"] and header["trnbench commit"] == "0b7248b670cf"
    assert header["sweeps"].startswith("cpu-baseline")
    assert header["reproduce this report"] == built.command
    prov = cells.provenance(built.table).set_index("row")
    assert prov.loc["R5", "reproduce"] == (
        "trnbench run --model tiny --backend cpu --batch 2 --seq 256 --steps 10 --warmup 2 "
        "--precision fp32 --no-compile --lr 0.0003 --seed 0 --data synthetic --energy auto "
        "--parallel ddp --tp 1 --dp-shard 0 --ac none --param-dtype fp32 --dist-timeout 600.0 "
        "--nproc 2")


def test_reproduce_line_resolves_to_the_stored_configuration(built):
    """Every row's `trnbench run` line, parsed by run's own flags, gives back exactly the
    configuration its records hold (the older records lack the fields added since: those ran
    with the defaults the line names)."""
    prov = cells.provenance(built.table).set_index("row")
    records = {r["run_id"]: r for r in store.iter_records(RESULTS)}
    for row, g in built.groups.items():
        argv = shlex.split(prov.loc[row, "reproduce"])
        assert argv[:2] == ["trnbench", "run"]
        parser = argparse.ArgumentParser()
        run_command.add_run_args(parser)
        args = parser.parse_args(argv[2:])
        stored = records[g.iloc[0]["run_id"]]["config"]
        resolved = config.resolve(args.backend, config.flag_layer(args)).as_dict()
        assert {k: v for k, v in resolved.items() if k in stored} == stored
        added = set(resolved) - set(stored)  # --tp, --ac, ... came after these records
        assert added and all(resolved[k] == rows.DEFAULTS[f"config.{k}"] for k in added)
        assert (args.nproc or 1) == g.iloc[0]["world_size"]


def test_text_cells_are_safe_to_paste(built):
    table = built.table.copy()
    table.loc[0, "model"] = "=HYPERLINK(\"x\")"
    table.loc[1, "device"] = "<img src=x onerror=alert(1)> | pipe"
    unsafe = report_pkg.Report(built.sources, built.records, built.cv_threshold, table,
                               built.groups, built.failed, built.scaling)
    md = render.markdown(unsafe)
    assert "| '=HYPERLINK(\"x\") |" in md
    assert "&lt;img src=x onerror=alert(1)&gt; \\| pipe" in md and "<img src=x" not in md
    csv = pd.read_csv(io.StringIO(render.csv(table)))
    assert csv.loc[0, "model"] == "'=HYPERLINK(\"x\")"
    assert csv["tokens_per_s_per_chip"].dtype == float  # numbers stay numbers
    assert "<img src=x" not in render.page(unsafe)


def test_every_chart_carries_the_footer(built, monkeypatch):
    """Each PNG of the report is drawn with the footer of its records: system, the dates
    measured, the trnbench commit, the date drawn."""
    footer = plots.records_footer(pd.concat(built.groups.values()))
    assert footer == (f"trnbench · system: AMD EPYC (cpu) on vm · measured 2026-11-25 · commit "
                      f"0b7248b670cf · drawn {datetime.now(timezone.utc):%Y-%m-%d}")
    notes = []
    draw = plots.to_png
    monkeypatch.setattr(plots, "to_png", lambda fig, note=None: notes.append(note) or draw(
        fig, note))
    charts = plots.draw(built.table, built.groups, built.scaling)
    assert set(charts) == {"throughput.png", "step_times.png", "scaling.png"}  # no energy
    assert notes == [footer] * 3


def test_baseline_rows_are_named_in_compares_query_language(built):
    """report --baseline reads compare's queries: device is the device kind, threads and ranks
    are short keys, a run id names its row; a query over several rows is refused."""
    table, groups = built.table, built.groups
    assert derived.baseline_row(table, groups, "device=cpu,threads=1,ranks=1") == "R3"
    assert derived.baseline_row(table, groups, "model=tiny,threads=1,world_size=1") == "R3"
    assert derived.baseline_row(table, groups, groups["R5"]["run_id"].iloc[0]) == "R5"
    with pytest.raises(ConfigError, match=r"--baseline: 'model=tiny' selects runs of 3 rows "
                                          r"\(R3, R4, R5\), expected one"):
        derived.baseline_row(table, groups, "model=tiny")


def test_where_a_run_found_its_cache_does_not_split_a_row():
    """Runs that differ only in the NEFF cache's directory or where the topology was read are
    one configuration; a different LNC is another."""
    frame = rows.normalise(store.load(RESULTS))
    ok = frame[frame["status"] == "ok"]
    one = ok[ok["run_id"] == ok["run_id"].iloc[0]]
    copies = pd.concat([one.assign(**{"device.versions.neff_cache": d,
                                      "device.versions.topology_source": s,
                                      "device.versions.lnc": "2"})
                        for d, s in (("/a", "neuron-ls"), ("/b", "runtime"))])
    assert len(rows.group(copies)) == 1
    copies.iloc[1, copies.columns.get_loc("device.versions.lnc")] = "1"
    assert len(rows.group(copies)) == 2
