"""Training time on 10,000 mails (the labelled set, repeated to that size), with and without
the cross-validated complaint-threshold tuning.

    .venv/bin/python benchmarks/train.py build/train
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from classifier import data, train  # noqa: E402


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "build" / "train"
    t = time.perf_counter()
    examples = data.examples(data.raw_mails(folder))
    read = time.perf_counter() - t
    big = (examples * (10_000 // len(examples) + 1))[:10_000]
    for tune in (False, True):
        t = time.perf_counter()
        train.fit(big, tune=tune)
        print(f"fit 10,000 mails, threshold tuning {'on ' if tune else 'off'}: {time.perf_counter() - t:6.1f} s")
    print(f"reading and parsing {len(examples)} mails: {read:.1f} s ({len(examples) / read:.0f} mails/s)")


if __name__ == "__main__":
    main()
