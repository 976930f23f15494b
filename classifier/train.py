"""Fit the pipeline on labelled examples, tune the complaint threshold, record metadata."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import sklearn
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline

from classifier.data import Example
from classifier.model import build_pipeline, sample_weights
from classifier.text import features_of
from daemon.decide import COMPLAINTS

SEED = 20261123
TARGET_COMPLAINT_RECALL = 0.99


def data_hash(examples: Sequence[Example]) -> str:
    h = hashlib.sha256()
    for e in sorted(examples, key=lambda e: (e.intent, e.notification.message_id)):
        h.update(f"{e.intent}\0{e.notification.subject}\0{e.notification.buyer_text}\0".encode())
    return h.hexdigest()[:16]


def tune_threshold(examples: Sequence[Example], seed: int = SEED, **params: Any) -> float:
    """The P(complaint) above which a mail counts as a complaint, chosen on cross-validated
    predictions of the TRAINING data (never the evaluation set) to reach the target recall."""
    X = [features_of(e.notification) for e in examples]
    y = np.array([e.intent for e in examples])
    folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=seed)
    pipe = build_pipeline(seed=seed, **params)
    proba = cross_val_predict(pipe, X, y, cv=folds, method="predict_proba",
                              params={"model__sample_weight": sample_weights(list(y))})
    labels = sorted(set(y))
    cols = [i for i, lab in enumerate(labels) if lab in COMPLAINTS]
    mass = proba[:, cols].sum(axis=1)
    is_c = np.isin(y, COMPLAINTS)
    for t in np.arange(0.6, 0.04, -0.01):
        if is_c.sum() and (mass[is_c] >= t).mean() >= TARGET_COMPLAINT_RECALL:
            return round(float(t), 2)
    return 0.05


def fit(examples: Sequence[Example], seed: int = SEED, tune: bool = True,
        **params: Any) -> tuple[Pipeline, dict[str, Any]]:
    X = [features_of(e.notification) for e in examples]
    y = [e.intent for e in examples]
    threshold = tune_threshold(examples, seed, **params) if tune else 0.35
    pipeline = build_pipeline(seed=seed, **params).fit(X, y, model__sample_weight=sample_weights(y))
    meta = {
        "labels": [str(c) for c in pipeline.classes_],
        "counts": dict(Counter(y)),
        "data_hash": data_hash(examples),
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "seed": seed,
        "params": params,
        "complaint_threshold": threshold,
        "sklearn_version": sklearn.__version__,
    }
    return pipeline, meta
