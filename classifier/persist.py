"""Saving and loading the model: one .npz file read with allow_pickle=False, so no code can
run when a model is loaded (a pickle, or a joblib file, runs whatever it holds).

The file holds the arrays of a classifier.linear.LinearModel and, as UTF-8 JSON in a byte
array, its description and the metadata: labels, data hash, training date, the scikit-learn
version that fitted it, the tuned complaint threshold, and the file format. A file of another
format is refused with both formats named. A .json copy of the metadata is written beside it.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from classifier.linear import LinearModel
from daemon.errors import ModelError

FORMAT = "madoguchi-linear-1"


def save(model: LinearModel, metadata: dict[str, Any], path: Path) -> None:
    meta = {**metadata, "format": FORMAT}
    header = json.dumps({"model": model.description(), "metadata": meta}, ensure_ascii=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:  # a file object: np.savez would append ".npz" to a name
        np.savez_compressed(f, header=np.frombuffer(header.encode("utf-8"), dtype=np.uint8), **model.arrays())
    path.with_suffix(".json").write_text(json.dumps(meta, ensure_ascii=False, indent=2) + "\n",
                                         encoding="utf-8")


def load(path: Path) -> tuple[LinearModel, dict[str, Any]]:
    if not path.is_file():
        raise ModelError(f"{path}: no model file there (train one with `madoguchi train`)")
    try:
        with path.open("rb") as f, np.load(f, allow_pickle=False) as npz:  # closed even when np.load fails
            arrays = {name: npz[name] for name in npz.files}
        header = json.loads(arrays.pop("header").tobytes().decode("utf-8"))
        meta = header["metadata"]
        found = meta.get("format")
        if found != FORMAT:
            raise ModelError(f"{path}: the model file has the format {found!r}, but this madoguchi reads "
                             f"{FORMAT!r}; retrain it with `madoguchi train`")
        model = LinearModel.from_arrays(arrays, header["model"])
    except ModelError:
        raise
    except (OSError, ValueError, KeyError, TypeError, AttributeError, EOFError, zipfile.BadZipFile) as exc:
        # np.load refuses pickled objects with a ValueError; a damaged file fails in many ways
        raise ModelError(f"{path}: the model file is corrupt or not a madoguchi model "
                         f"({type(exc).__name__})") from None
    if len(model.labels) != model.weights.shape[1] or model.weights.shape[0] != (
            model.idf_text.size + model.idf_subject.size + len(model.meta_vocabulary)):
        raise ModelError(f"{path}: the model file is corrupt (its arrays do not fit together)")
    return model, meta
