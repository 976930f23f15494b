"""Every mail of ../shared/corpus (real-world mail from other projects' test suites, many
malformed, 249 Japanese) gives exactly one classify line and no traceback. Read in place when
the folder exists; nothing from it is copied into the project."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT.parent / "shared" / "corpus"
SKIP = {"INDEX.tsv", "JAPANESE.md", "SOURCES.md"}


def corpus_files() -> list[Path]:
    return sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.name not in SKIP)


@pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus is not here")
def test_every_corpus_mail_gives_one_line_and_no_traceback(tmp_path: Path) -> None:
    files = corpus_files()
    listing = tmp_path / "files"
    listing.write_text("\n".join(map(str, files)))
    out = subprocess.run([sys.executable, "-m", "daemon", "classify", "--json", *map(str, files)],
                         capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert "Traceback" not in out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["file"] for r in rows] == [str(p) for p in files]
    errors = [r for r in rows if "error" in r]
    assert all(r["error"] for r in errors)
    assert len(errors) < len(rows) * 0.05  # what fails is what is not a mail at all
    japanese = [r for r in rows if "error" not in r and r["marketplace"] == "unknown"]
    assert japanese  # ordinary mail is nobody's marketplace


@pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus is not here")
def test_valid_cp932_never_becomes_replacement_characters() -> None:
    from daemon.errors import ParseError
    from daemon.parse import parse

    bad = []
    for p in corpus_files():
        raw = p.read_bytes()
        if b"shift_jis" not in raw.lower() and b"iso-2022-jp" not in raw.lower():
            continue
        try:
            n = parse(raw)
        except ParseError:  # counted by the test above
            continue
        if "\ufffd" in n.buyer_text + n.subject:
            bad.append(p.name)
    assert bad == []
