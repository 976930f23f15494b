"""The scikit-learn transformers of training: classifier/text.py's functions in a Pipeline."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix
from sklearn.base import BaseEstimator, TransformerMixin

from classifier.text import char_ngrams, normalise


class FieldText(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Selects one field of the feature dicts and normalises it (or not, for `meta`)."""

    def __init__(self, field: str = "text", normalise: bool = True) -> None:
        self.field = field
        self.normalise = normalise

    def fit(self, X: Sequence[dict[str, str]], y: Any = None) -> FieldText:
        return self

    def transform(self, X: Sequence[dict[str, str]]) -> list[str]:
        if self.normalise:
            return [normalise(x.get(self.field, "") or "") for x in X]
        return [x.get(self.field, "") or "" for x in X]


class HashedChars(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Counts of hashed character n-grams (classifier.text.char_ngrams) as a sparse matrix.

    Like HashingVectorizer(analyzer="char", alternate_sign=False, norm=None), with a hash the
    daemon computes without scikit-learn."""

    def __init__(self, n_max: int = 3, bits: int = 17) -> None:
        self.n_max = n_max
        self.bits = bits

    def fit(self, X: Sequence[str], y: Any = None) -> HashedChars:
        return self

    def transform(self, X: Sequence[str]) -> csr_matrix:
        rows, buckets, counts = char_ngrams(list(X), self.n_max, self.bits)
        return csr_matrix((counts.astype(np.float64), (rows, buckets)), shape=(len(X), 2**self.bits))
