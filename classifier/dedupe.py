"""Near-duplicate messages: within the training data (removed by the corpus builder) and
between training and evaluation data (leakage, reported). Cosine similarity of character
3-gram counts; one sparse matrix product, so thousands of messages take a second."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.preprocessing import normalize

from classifier.text import normalise

THRESHOLD = 0.9


def _vectors(texts: Sequence[str]):  # type: ignore[no-untyped-def]
    hv = HashingVectorizer(analyzer="char", ngram_range=(3, 3), n_features=2**20, alternate_sign=False, norm=None)
    return normalize(hv.transform([normalise(t) for t in texts]))


def near_duplicates(texts: Sequence[str], threshold: float = THRESHOLD) -> set[int]:
    """Indexes to drop so that no two kept texts are near-duplicates (the later one goes)."""
    if not texts:
        return set()
    x = _vectors(texts)
    sim = (x @ x.T).tocoo()
    drop: set[int] = set()
    for i, j, v in zip(sim.row, sim.col, sim.data, strict=True):
        if i < j and v >= threshold and i not in drop:
            drop.add(int(j))
    return drop


def overlap(train: Sequence[str], other: Sequence[str], threshold: float = THRESHOLD) -> int:
    """How many texts of `other` have a near-duplicate in `train`."""
    if not train or not other:
        return 0
    sim = _vectors(other) @ _vectors(train).T
    return int((np.asarray(sim.max(axis=1).todense()).ravel() >= threshold).sum())
