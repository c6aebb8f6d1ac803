"""No file of the repository cites a document outside it: the files `git ls-files` lists (the
rest of the documentation's checks: tests/unit/test_docs.py)."""

from __future__ import annotations

import re
import subprocess

from tests.conftest import ROOT

# the design notes the project was written from are not part of it
OUTSIDE_DOCS = re.compile(r"\b(DESIGN|FACTS)\.md\b")


def test_no_tracked_file_cites_a_document_outside_the_repository():
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                           check=True).stdout.decode().split("\0")
    citing = []
    for name in filter(None, files):
        path = ROOT / name
        if not path.is_file():
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:  # images and other binary files
            continue
        citing += [f"{name}:{text.count(chr(10), 0, m.start()) + 1}"
                   for m in OUTSIDE_DOCS.finditer(text)]
    assert not citing, f"cites a document outside the repository: {citing}"
