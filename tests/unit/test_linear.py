"""The daemon's numpy scoring gives what the fitted scikit-learn Pipeline gives, and the
daemon's process imports neither scikit-learn nor SciPy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from classifier.linear import LinearModel
from classifier.model import build_pipeline, sample_weights
from classifier.text import char_ngrams

ROOT = Path(__file__).resolve().parents[2]


def rows(limit_per_file: int) -> tuple[list[dict[str, str]], list[str]]:
    """Feature rows straight from the hand-written data (no mail building needed here)."""
    X, y = [], []
    for path in sorted((ROOT / "data" / "train").rglob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines()[:limit_per_file]:
            item = json.loads(line)
            X.append({"text": item["text"], "subject": item.get("subject") or "",
                      "meta": f"mp={item['marketplace']} via=- kind=buyer_message lang={item['lang']}"})
            y.append(item["intent"])
    return X, y


@pytest.mark.parametrize("intents", [None, ("not_received", "inquiry")])
def test_numpy_scoring_equals_the_pipeline(intents: tuple[str, ...] | None) -> None:
    X, y = rows(12)
    if intents:
        X, y = [x for x, i in zip(X, y, strict=True) if i in intents], [i for i in y if i in intents]
    train, test = slice(0, None, 2), slice(1, None, 2)
    pipeline = build_pipeline(seed=1).fit(X[train], y[train], model__sample_weight=sample_weights(y[train]))
    model = LinearModel.from_pipeline(pipeline)
    assert model.labels == tuple(pipeline.classes_)
    expected = pipeline.predict_proba(X[test])
    got = model.predict_proba(X[test])
    assert got.shape == expected.shape and len(X[test]) > 20
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)
    assert (got.argmax(axis=1) == expected.argmax(axis=1)).all()


def test_char_ngrams_count_every_gram_once_and_never_across_two_texts() -> None:
    texts = ["届かない届かない", "", "a", "届かない"]
    rows, buckets, counts = char_ngrams(texts, 3, 17)
    assert [int(counts[rows == i].sum()) for i in range(4)] == [8 + 7 + 6, 0, 1, 4 + 3 + 2]
    assert buckets.max() < 2**17 and (np.diff(rows) >= 0).all()
    alone = char_ngrams(texts[3:], 3, 17)
    assert (buckets[rows == 3] == alone[1]).all() and (counts[rows == 3] == alone[2]).all()
    assert set(buckets[rows == 3]) < set(buckets[rows == 0])  # the same words, the same buckets
    assert char_ngrams([], 3, 17)[0].size == 0


def test_the_daemon_runs_without_scikit_learn_or_scipy() -> None:
    code = (
        "import sys, daemon.cli, daemon.app, daemon.service\n"
        "from classifier.predict import ModelClassifier\n"
        "from daemon.pipeline import handle\n"
        "from daemon import app, config\n"
        "ctx = app.context(config.defaults())\n"
        "raw = open('daemon/samples/1-amazon-missing-volume.eml', 'rb').read()\n"
        "print(handle(raw, ctx, __import__('datetime').datetime.now().astimezone()).decision.intent)\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'sklearn', 'scipy', 'skops'}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    intent, heavy = out.stdout.splitlines()
    assert intent == "missing_item" and heavy == "[]"
