"""The one thing daemon/ uses from classifier/: Notifications in, Predictions out."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from sklearn.pipeline import Pipeline

from classifier.features import features_of
from daemon.domain import Notification, Prediction

DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "models" / "default.skops"


class Classifier(Protocol):
    def predict(self, notifications: Sequence[Notification]) -> list[Prediction]: ...


class ModelClassifier:
    def __init__(self, pipeline: Pipeline, metadata: dict[str, Any]) -> None:
        self.pipeline = pipeline
        self.metadata = metadata
        self.labels = [str(c) for c in pipeline.classes_]
        self.complaint_threshold = float(metadata.get("complaint_threshold", 0.35))

    @classmethod
    def from_file(cls, path: Path | None = None) -> ModelClassifier:
        from classifier.persist import load

        pipeline, meta = load(path or DEFAULT_MODEL)
        return cls(pipeline, meta)

    def predict(self, notifications: Sequence[Notification]) -> list[Prediction]:
        if not notifications:
            return []
        proba = self.pipeline.predict_proba([features_of(n) for n in notifications])
        out = []
        for row in proba:
            pairs = tuple(sorted(zip(self.labels, (float(p) for p in row), strict=True),
                                 key=lambda x: -x[1]))
            out.append(Prediction(intent=pairs[0][0], confidence=pairs[0][1], probabilities=pairs))
        return out
