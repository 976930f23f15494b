"""False drafts on ordinary mail: how many mails that are no buyer's message would get a draft.

Two sets: the real-world mail of ../shared/corpus (other projects' mail, read here, never
copied; mostly English) and the evaluation set's ordinary mail written for the project by
writer I (build/eval/other/I*.eml: family, the seller's own purchases, offices, in Japanese
above all). Neither is used for training.

    .venv/bin/python benchmarks/ordinary_mail.py [--model MODEL.npz]
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import EVAL, ensure_built, filler_pool
from classifier.predict import ModelClassifier
from daemon import app, config
from daemon.pipeline import handle_batch
from daemon.store import Store
from daemon.testing import fixed_clock


def drafted(raws: list[bytes], model: ModelClassifier) -> tuple[int, int, dict[str, int]]:
    """(mails read, mails that would get a draft, their intents)."""
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "state.sqlite3")
        outcomes = handle_batch(raws, app.context(config.defaults(), store, model), fixed_clock(), drafts=False)
        store.close()
    read = [o for o in outcomes if not isinstance(o, Exception)]
    intents = collections.Counter(o.decision.intent for o in read if o.decision.wants_reply)
    return len(read), sum(intents.values()), dict(intents.most_common())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, help="model file (default: the shipped one)")
    args = ap.parse_args()
    model = ModelClassifier.from_file(args.model)
    ensure_built()
    pool, source = filler_pool()
    sets = {f"corpus ({source})": pool,
            "evaluation set, ordinary mail by writer I": [p.read_bytes() for p in sorted((EVAL / "other").glob("I*.eml"))]}
    for name, raws in sets.items():
        read, n, intents = drafted(raws, model)
        print(f"{name}: {n} of {read} would get a draft {intents}")


if __name__ == "__main__":
    main()
