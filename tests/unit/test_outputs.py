"""What trnbench writes and prints shows user text as text: a stored name never becomes a
link, an image or a new table row in a Markdown report, never rich markup on the terminal;
and an output file is written whole, never through a symbolic link (issue 26 items 2, 3,
10). Paths refused up front: tests/unit/test_bad_input.py."""

from __future__ import annotations

import pandas as pd
import pytest
from markdown_it import MarkdownIt

from bench.inputs.paths import write_file
from bench.records import store
from bench.records.record import Device, Record
from bench.report import render
from tests.conftest import OK_CONFIG, invoke, parse_tables

HOSTILE = [
    "![t](https://tracker.example/p.png?u=1)",  # a tracking image
    "[click](javascript:alert(1))",
    "<img src=x onerror=alert(1)>",
    "a\rb", "a\nb", "a\u2028b",  # a bare CR ends a table row too
    "a|b", "a\\|b", "x\\](y)",  # a pipe, and a backslash before one
    "[t]: https://tracker.example/", "=HYPERLINK(\"x\")",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_a_markdown_cell_renders_as_its_text(text):
    md = render.md_table(pd.DataFrame({"model": [text], "n": ["1"]}), {"n"})
    html = MarkdownIt("commonmark").enable("table").render(md)
    assert "<a " not in html and "<img" not in html, html
    [(header, _, rows)] = parse_tables(md)
    assert header == ["model", "n"] and len(rows) == 1 and rows[0][1] == "1"
    shown = MarkdownIt("commonmark").renderInline(rows[0][0])
    assert "<a " not in shown and "<img" not in shown


def test_an_output_replaces_a_symbolic_link_not_its_target(tmp_path):
    """A link made after the up-front check: the rename replaces the link itself."""
    victim = tmp_path / "victim.md"
    victim.write_text("keep\n")
    (tmp_path / "report.md").symlink_to(victim)
    write_file(tmp_path / "report.md", "# report\n")
    assert victim.read_text() == "keep\n"
    assert not (tmp_path / "report.md").is_symlink()
    assert (tmp_path / "report.md").read_text() == "# report\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.md", "victim.md"]


def test_markup_in_user_text_is_printed_as_text(tmp_path, cache_dir):
    """A results path and a stored record's texts with rich markup in them: `run` and
    `report` print them as they are."""
    results = tmp_path / "[/]" / "r[bold].jsonl"
    proc = invoke("run", "--backend", "cpu", "--model", "tiny", "--batch", "1", "--seq", "8",
                  "--steps", "1", "--warmup", "0", "--results", str(results), cwd=tmp_path,
                  env={"TRNBENCH_CACHE_DIR": str(cache_dir), "COLUMNS": "300"})
    assert proc.returncode == 0, proc.stderr
    assert str(results) in proc.stdout
    store.append(results, Record.new(OK_CONFIG, {"host": "[red]h[/]"}, tokens_per_s=1.0,
                                     device=Device(name="[/]", kind="[b]cpu")))
    proc = invoke("report", str(results), "--out", str(tmp_path / "out"), cwd=tmp_path,
                  env={"COLUMNS": "300"})
    assert proc.returncode == 0, proc.stderr
    assert "[/]" in proc.stdout
