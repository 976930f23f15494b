"""Marketplace and order-id accuracy of parsing on a built labelled set (its truth.jsonl).

    .venv/bin/python benchmarks/parsing_accuracy.py build/eval
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from daemon.parse import parse  # noqa: E402


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "build" / "eval"
    rows = [json.loads(x) for x in (folder / "truth.jsonl").read_text(encoding="utf-8").splitlines() if x]
    mp_ok = oid_ok = 0
    misses: Counter[str] = Counter()
    for r in rows:
        n = parse((folder / r["file"]).read_bytes())
        mp_ok += n.marketplace == r["marketplace"]
        oid_ok += n.order_id == r["order_id"]
        if n.order_id != r["order_id"]:
            misses[f"order id {r['marketplace']}: expected {r['order_id']!r}, got {n.order_id!r}"] += 1
        if n.marketplace != r["marketplace"]:
            misses[f"marketplace: expected {r['marketplace']}, got {n.marketplace}"] += 1
    print(f"buyer messages   {len(rows)}")
    print(f"marketplace      {mp_ok / len(rows):.4f} ({mp_ok}/{len(rows)})")
    print(f"order id         {oid_ok / len(rows):.4f} ({oid_ok}/{len(rows)})")
    per = Counter(r["marketplace"] for r in rows)
    print("per marketplace  " + ", ".join(f"{m} {k}" for m, k in per.most_common()))
    for what, n in misses.most_common(8):
        print(f"  {n} × {what}")


if __name__ == "__main__":
    main()
