"""Parse and classification speed, model size and load time. Run on demand:

    .venv/bin/python benchmarks/model.py [build/eval]

Prints its figures; asserts nothing. Uses the labelled evaluation mail built by
`python -m classifier.corpus data/eval build/eval` (or any folder of .eml files).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from classifier.predict import DEFAULT_MODEL, ModelClassifier  # noqa: E402
from classifier.text import features_of  # noqa: E402
from daemon.parse import parse  # noqa: E402


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "build" / "eval"
    raws = [p.read_bytes() for p in sorted(folder.rglob("*.eml"))]
    if not raws:
        sys.exit(f"no .eml files under {folder}: build them with python -m classifier.corpus")
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    rounds = max(1, 5000 // len(raws))
    t = time.perf_counter()
    for _ in range(rounds):
        notes = [parse(r) for r in raws]
    parse_rate = rounds * len(raws) / (time.perf_counter() - t)
    t = time.perf_counter()
    model = ModelClassifier.from_file()
    load = time.perf_counter() - t
    x = [features_of(n) for n in notes] * max(1, 20000 // len(notes))
    t = time.perf_counter()
    model.model.predict_proba(x)
    classify_rate = len(x) / (time.perf_counter() - t)
    print(f"mails                 {len(raws)} from {folder}")
    print(f"parse                 {parse_rate:8.0f} mails/s (one core)")
    print(f"classify              {classify_rate:8.0f} mails/s (one core, batch)")
    print(f"model file            {DEFAULT_MODEL.stat().st_size / 1e6:8.1f} MB")
    print(f"model load            {load:8.2f} s")


if __name__ == "__main__":
    main()
