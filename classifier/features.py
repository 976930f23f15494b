"""Text normalisation and the transformers that turn a parsed mail into model input. Pure."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Any

from sklearn.base import BaseEstimator, TransformerMixin

from daemon.domain import Notification

MAX_CHARS = 3000  # the model reads the head of long mails: the point is made early


def normalise(text: str) -> str:
    """NFKC (full-width → half-width, ｶﾅ → カナ), lower case, digits and URLs folded, so
    order numbers and prices do not become vocabulary."""
    t = unicodedata.normalize("NFKC", text[: MAX_CHARS * 2]).lower()
    t = re.sub(r"https?://\S+", " url ", t)
    t = re.sub(r"\d+", "0", t)
    return re.sub(r"\s+", " ", t).strip()[:MAX_CHARS]


def features_of(n: Notification) -> dict[str, str]:
    """What the model sees of a mail: the buyer's words, the subject, and parsing's facts."""
    meta = f"mp={n.marketplace} via={n.via or '-'} kind={n.kind} lang={n.language}"
    return {"text": n.buyer_text, "subject": n.subject, "meta": meta}


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
