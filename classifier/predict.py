"""The one thing daemon/ uses from classifier/: Notifications in, Predictions out.

It imports neither scikit-learn nor SciPy (classifier/linear.py scores with numpy alone).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from classifier.linear import LinearModel
from classifier.text import features_of
from daemon.domain import Notification, Prediction

DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "models" / "default.npz"


class Classifier(Protocol):
    def predict(self, notifications: Sequence[Notification]) -> list[Prediction]: ...


class ModelClassifier:
    def __init__(self, model: LinearModel, metadata: dict[str, Any]) -> None:
        self.model = model
        self.metadata = metadata
        self.labels = list(model.labels)
        self.complaint_threshold = float(metadata.get("complaint_threshold", 0.35))

    @classmethod
    def from_file(cls, path: Path | None = None) -> ModelClassifier:
        from classifier.persist import load

        model, meta = load(path or DEFAULT_MODEL)
        return cls(model, meta)

    def predict(self, notifications: Sequence[Notification]) -> list[Prediction]:
        if not notifications:
            return []
        proba = self.model.predict_proba([features_of(n) for n in notifications])
        out = []
        for row in proba:
            pairs = tuple(sorted(zip(self.labels, (float(p) for p in row), strict=True),
                                 key=lambda x: -x[1]))
            out.append(Prediction(intent=pairs[0][0], confidence=pairs[0][1], probabilities=pairs))
        return out
