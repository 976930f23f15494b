"""What the model reads of a mail, as plain functions over strings and numpy arrays. Pure.

No scikit-learn here: the daemon scores mail with this module and classifier/linear.py alone,
so a process that runs for months does not carry scikit-learn's and SciPy's modules (about
100 MB of its memory). Training wraps the same functions in scikit-learn transformers
(classifier/features.py), so both read a mail identically.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

import numpy as np

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


# A polynomial over code points builds each n-gram's key, a splitmix64 finaliser spreads it;
# every step is one numpy operation over the whole text (unsigned 64-bit arithmetic wraps).
_P = np.uint64(0x100000001B3)
_SALTS = [np.uint64((0x9E3779B97F4A7C15 * n) % 2**64) for n in range(8)]  # one per n-gram length
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def char_ngrams(texts: Sequence[str], n_max: int, bits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each text's character 1- to n_max-grams hashed into 2**bits buckets, counted: (row,
    bucket, count) triples ordered by row, then bucket. Needs no tokenizer, which suits
    Japanese; the whole batch is hashed at once, as one array of code points."""
    lengths = np.array([len(t) for t in texts], dtype=np.int64)
    codes = np.frombuffer("".join(texts).encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    row = np.repeat(np.arange(len(texts), dtype=np.uint64), lengths)
    left = np.repeat(lengths, lengths) - (np.arange(codes.size) - np.repeat(np.cumsum(lengths) - lengths, lengths))
    keys = np.zeros_like(codes)
    found = []
    for n in range(1, min(n_max, len(_SALTS) - 1) + 1):
        if codes.size < n:
            break
        keys = keys[: codes.size - n + 1] * _P + codes[n - 1 :]  # the n-gram starting at each place
        x = keys ^ _SALTS[n]
        x = (x ^ (x >> np.uint64(30))) * _M1
        x = (x ^ (x >> np.uint64(27))) * _M2
        fits = left[: keys.size] >= n  # the n-gram ends inside its own text
        found.append((row[: keys.size][fits] << np.uint64(bits)) | ((x ^ (x >> np.uint64(31)))[fits] >> np.uint64(64 - bits)))
    if not found:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    keyed, counts = np.unique(np.concatenate(found), return_counts=True)
    return ((keyed >> np.uint64(bits)).astype(np.int64), (keyed & np.uint64(2**bits - 1)).astype(np.int64),
            counts.astype(np.int64))
