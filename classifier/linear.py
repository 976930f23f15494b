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
            order = [labels.index(str(c)) for c in svm.classes_]
            coef, intercept = coef[np.argsort(order)], intercept[np.argsort(order)]
            calibration = np.array([[c.a_ for c in calibrators], [c.b_ for c in calibrators]],
                                   dtype=np.float64)[:, np.argsort(order)]
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
        decisions = np.empty((len(rows), len(self.labels)))
        for i, row in enumerate(rows):
            features, values = self._vector(row)
            decisions[i] = values @ self.weights[features]
        decisions += self.intercept
        a, b = self.calibration
        proba = 1.0 / (1.0 + np.exp(a * decisions + b))
        if len(self.labels) == 2:
            proba[:, 0] = 1.0 - proba[:, 1]
            return proba
        total = proba.sum(axis=1, keepdims=True)
        uniform = np.full_like(proba, 1.0 / len(self.labels))
        return np.divide(proba, total, out=uniform, where=total != 0)

    def _vector(self, row: Mapping[str, str]) -> tuple[np.ndarray, np.ndarray]:
        text = self._tfidf(row.get("text", "") or "", self.idf_text, offset=0)
        subject = self._tfidf(row.get("subject", "") or "", self.idf_subject, offset=self.idf_text.size)
        offset = self.idf_text.size + self.idf_subject.size
        meta = sorted({offset + self.meta_vocabulary[t] for t in (row.get("meta", "") or "").split()
                       if t in self.meta_vocabulary})
        return (np.concatenate([text[0], subject[0], np.array(meta, dtype=np.int64)]),
                np.concatenate([text[1], subject[1], np.ones(len(meta))]))

    def _tfidf(self, raw: str, idf: np.ndarray, offset: int) -> tuple[np.ndarray, np.ndarray]:
        buckets, counts = char_ngrams(normalise(raw), self.n_max, int(idf.size).bit_length() - 1)
        values = (np.log(counts) + 1.0) * idf[buckets]
        norm = np.sqrt(values @ values)
        return buckets + offset, (values / norm if norm else values)

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
