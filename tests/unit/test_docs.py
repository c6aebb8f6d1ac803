"""The documentation lives in the repository: every relative link resolves, the README stays
short, and the reference covers every verb and chip (that no tracked file cites a document
outside the repository, from `git ls-files`: tests/integration/test_docs_tracked_files.py)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from bench.backends import hardware

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted([ROOT / "README.md", ROOT / "results" / "README.md",
               *(ROOT / "docs").rglob("*.md")])
FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
CODE_SPAN = re.compile(r"`[^`\n]*`")
INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
REF_USE = re.compile(r"\[[^\]]+\]\[([^\]]+)\]")
REF_DEF = re.compile(r"^\[([^\]]+)\]:\s*(\S+)", re.M)
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.M)


def prose(path: Path) -> str:
    """The Markdown of ``path`` without fenced code blocks and code spans."""
    return CODE_SPAN.sub("", FENCE.sub("", path.read_text()))


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", CODE_SPAN.sub(lambda m: m[0][1:-1], heading).lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every anchor of a Markdown file (a repeated heading gets -1, -2, ... as on GitHub)."""
    seen: dict[str, int] = {}
    out = set()
    for heading in HEADING.findall(FENCE.sub("", path.read_text())):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def relative_links(path: Path) -> list[str]:
    text = prose(path)
    return INLINE_LINK.findall(text) + [url for _, url in REF_DEF.findall(text)]


def prose_with_keys() -> str:
    """docs/methodology.md without its code blocks (code spans kept: the keys are in them)."""
    return FENCE.sub("", (ROOT / "docs" / "methodology.md").read_text())


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(doc: Path):
    broken = []
    for link in relative_links(doc):
        if re.match(r"[a-z][a-z0-9+.-]*:", link):  # https:, mailto: ...: not a repository path
            continue
        target, _, anchor = link.partition("#")
        file = (doc.parent / target).resolve() if target else doc
        if not file.exists():
            broken.append(f"{link}: no file {file}")
        elif ROOT not in file.parents and file != ROOT:
            broken.append(f"{link}: outside the repository")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{link}: no heading #{anchor} in {file.relative_to(ROOT)}")
    assert not broken, f"{doc.relative_to(ROOT)}: " + "; ".join(broken)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_reference_link_is_defined(doc: Path):
    text = prose(doc)
    defined = {label.lower() for label, _ in REF_DEF.findall(text)}
    used = {label.lower() for label in REF_USE.findall(text)}
    assert used <= defined, f"undefined reference links: {sorted(used - defined)}"


def test_readme_is_short_with_a_table_of_contents():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) < 250
    contents = text.split("## Contents", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"\]\(#([^)]+)\)", contents)
    assert listed and set(listed) <= anchors(ROOT / "README.md")
    # the two set-up commands, exactly as CI calls them
    assert "make bench" in text and "make test" in text


def test_every_verb_has_a_reference_page():
    from bench.cli import build_parser

    (verbs,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    index = (ROOT / "docs" / "cli" / "README.md").read_text()
    for verb in verbs.choices:
        page = ROOT / "docs" / "cli" / f"{verb}.md"
        assert page.exists(), f"no reference page for `trnbench {verb}`"
        assert f"trnbench {verb}" in page.read_text()
        assert f"]({verb}.md)" in index, f"docs/cli/README.md does not link {verb}.md"


def test_the_peak_and_power_table_matches_bench_hardware():
    """docs/methodology.md lists every chip of ``bench.backends.hardware.DEVICES`` with
    its figures."""
    rows = {m[1]: m[0] for m in re.finditer(r"^\| `(\w+)` \|.*$", prose_with_keys(), re.M)}
    for key, spec in hardware.DEVICES.items():
        assert key in rows, f"docs/methodology.md has no row for `{key}`"
        for precision, peak in spec.peak.items():
            assert f"{peak.value / 1e12:,g}" in rows[key], (key, precision)
        if spec.power_w is not None:
            assert f"{spec.power_w.value:,g} W" in rows[key], key
