"""The fitted model as plain arrays, and its scoring with numpy alone. Pure.

Training fits one scikit-learn Pipeline (classifier/model.py): hashed character n-grams of the
text and the subject with sublinear tf-idf, a bag of parsing's facts, a linear SVM, and a
sigmoid calibration per intent. A linear model is nothing but its arrays, so
`LinearModel.from_pipeline` reads them out and `predict_proba` computes what the Pipeline's
predict_proba does (tests/unit/test_linear.py checks the two agree). The daemon then runs
without importing scikit-learn or SciPy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from classifier.text import char_ngrams, normalise

CHUNK = 256  # mails scored together: fast, and the work arrays stay a few MB


@dataclass(frozen=True, eq=False)
class LinearModel:
    labels: tuple[str, ...]
    weights: np.ndarray  # (n_features, n_labels): one column of the SVM's coefficients per label
    intercept: np.ndarray  # (n_labels,)
    calibration: np.ndarray  # (2, n_labels): a and b of P = 1 / (1 + exp(a·decision + b))
    idf_text: np.ndarray
    idf_subject: np.ndarray
    meta_vocabulary: Mapping[str, int]
    n_max: int = 3

    @classmethod
    def from_pipeline(cls, pipeline: Any) -> LinearModel:
        """The arrays of a fitted classifier.model.build_pipeline() Pipeline."""
        parts = dict(pipeline.named_steps["features"].transformer_list)
        calibrated = pipeline.named_steps["model"].calibrated_classifiers_
        if len(calibrated) != 1:
            raise ValueError("expected one calibrated model (CalibratedClassifierCV(ensemble=False))")
        svm, calibrators = calibrated[0].estimator, calibrated[0].calibrators
        labels = [str(c) for c in pipeline.classes_]
        coef, intercept = np.asarray(svm.coef_, dtype=np.float64), np.asarray(svm.intercept_, dtype=np.float64)
        if len(labels) == 2:  # one decision, for the second label (scikit-learn's binary case)
            # predict_proba computes column 0 as 1 - column 1
            coef, intercept = np.vstack([np.zeros_like(coef), coef]), np.concatenate([[0.0], intercept])
            calibration = np.array([[0.0, calibrators[0].a_], [0.0, calibrators[0].b_]], dtype=np.float64)
        else:
            # rows of the SVM and its calibrators follow svm.classes_; put them in label order
            to_labels = np.argsort([labels.index(str(c)) for c in svm.classes_])
            coef, intercept = coef[to_labels], intercept[to_labels]
            calibration = np.array([[c.a_ for c in calibrators], [c.b_ for c in calibrators]],
                                   dtype=np.float64)[:, to_labels]
        text, subject = parts["text"].named_steps, parts["subject"].named_steps
        return cls(
            labels=tuple(labels), weights=np.ascontiguousarray(coef.T), intercept=intercept,
            calibration=calibration, idf_text=np.asarray(text["tfidf"].idf_, dtype=np.float64),
            idf_subject=np.asarray(subject["tfidf"].idf_, dtype=np.float64),
            meta_vocabulary={str(k): int(v) for k, v in parts["meta"].named_steps["bag"].vocabulary_.items()},
            n_max=int(text["hash"].n_max),
        )

    def predict_proba(self, rows: Sequence[Mapping[str, str]]) -> np.ndarray:
        """Calibrated probabilities, one row per mail, columns in the order of `labels`."""
        decisions = np.tile(self.intercept, (len(rows), 1))
        for first in range(0, len(rows), CHUNK):
            chunk = decisions[first : first + CHUNK]  # a view: filled in place
            for row, feature, value in self._features(rows[first : first + CHUNK]):
                if row.size:  # rows come sorted: sum each row's run of features at once
                    starts = np.flatnonzero(np.r_[True, row[1:] != row[:-1]])
                    chunk[row[starts]] += np.add.reduceat(self.weights[feature] * value[:, None], starts, axis=0)
        a, b = self.calibration
        with np.errstate(over="ignore"):  # exp → inf gives P = 0, as scikit-learn's expit does
            proba = 1.0 / (1.0 + np.exp(a * decisions + b))
        if len(self.labels) == 2:
            proba[:, 0] = 1.0 - proba[:, 1]
            return proba
        total = proba.sum(axis=1, keepdims=True)
        uniform = np.full_like(proba, 1.0 / len(self.labels))
        return np.divide(proba, total, out=uniform, where=total != 0)

    def _features(self, rows: Sequence[Mapping[str, str]]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(row, feature, value) of the text block, the subject block and the meta block."""
        text = self._tfidf([r.get("text", "") or "" for r in rows], self.idf_text)
        subject = self._tfidf([r.get("subject", "") or "" for r in rows], self.idf_subject)
        offset = self.idf_text.size + self.idf_subject.size
        meta = [(i, offset + self.meta_vocabulary[t]) for i, r in enumerate(rows)
                for t in set((r.get("meta", "") or "").split()) if t in self.meta_vocabulary]
        meta_rows, meta_features = (np.array(c, dtype=np.int64) for c in zip(*meta, strict=True)) if meta else \
            (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
        return [text, (subject[0], subject[1] + self.idf_text.size, subject[2]),
                (meta_rows, meta_features, np.ones(meta_rows.size))]

    def _tfidf(self, texts: list[str], idf: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sublinear tf × idf, each row scaled to unit length (TfidfTransformer's defaults)."""
        rows, buckets, counts = char_ngrams([normalise(t) for t in texts], self.n_max, int(idf.size).bit_length() - 1)
        values = (np.log(counts) + 1.0) * idf[buckets]
        norms = np.sqrt(np.bincount(rows, weights=values * values, minlength=len(texts)))
        return rows, buckets, values / norms[rows]

    # --- as arrays, for classifier/persist.py -----------------------------------------------
    def arrays(self) -> dict[str, np.ndarray]:
        return {"weights": self.weights, "intercept": self.intercept, "calibration": self.calibration,
                "idf_text": self.idf_text, "idf_subject": self.idf_subject}

    def description(self) -> dict[str, Any]:
        return {"labels": list(self.labels), "meta_vocabulary": dict(self.meta_vocabulary), "n_max": self.n_max}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], description: Mapping[str, Any]) -> LinearModel:
        return cls(labels=tuple(description["labels"]), meta_vocabulary=dict(description["meta_vocabulary"]),
                   n_max=int(description["n_max"]), **{k: arrays[k] for k in
                                                        ("weights", "intercept", "calibration", "idf_text", "idf_subject")})
