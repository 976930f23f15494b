"""Saving and loading the model: skops (no code runs at load, unlike pickle) plus metadata.

The artifact is one skops file holding {"pipeline": Pipeline, "metadata": JSON text}. At load,
every type in the file must be one of scikit-learn/numpy's or ours (TRUSTED); anything else
is refused. The metadata records the scikit-learn version, labels, data hash, training date
and the tuned complaint threshold; a version mismatch is refused with both versions named.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import sklearn
from sklearn.pipeline import Pipeline

from daemon.errors import ModelError

TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.", "builtins.", "classifier.features.")


def save(pipeline: Pipeline, metadata: dict[str, Any], path: Path) -> None:
    import skops.io as sio

    meta = {**metadata, "sklearn_version": sklearn.__version__}
    path.parent.mkdir(parents=True, exist_ok=True)
    sio.dump({"pipeline": pipeline, "metadata": json.dumps(meta, ensure_ascii=False)}, path)
    path.with_suffix(".json").write_text(json.dumps(meta, ensure_ascii=False, indent=2) + "\n",
                                         encoding="utf-8")


def load(path: Path) -> tuple[Pipeline, dict[str, Any]]:
    import skops.io as sio

    if not path.is_file():
        raise ModelError(f"{path}: no model file there (train one with `madoguchi train`)")
    try:
        untrusted = sio.get_untrusted_types(file=path)
        refused = [t for t in untrusted if not t.startswith(TRUSTED_PREFIXES)]
        if refused:
            raise ModelError(f"{path}: the model file contains types that are not trusted: "
                             f"{', '.join(refused[:5])}")
        obj = sio.load(path, trusted=untrusted)
        meta = json.loads(obj["metadata"])
        pipeline = obj["pipeline"]
    except ModelError:
        raise
    except Exception as exc:  # skops/zip/json raise many types on a corrupt file
        raise ModelError(f"{path}: the model file is corrupt or not a madoguchi model "
                         f"({type(exc).__name__})") from None
    if meta.get("sklearn_version") != sklearn.__version__:
        raise ModelError(
            f"{path}: the model was trained with scikit-learn {meta.get('sklearn_version')}, "
            f"but scikit-learn {sklearn.__version__} is installed; retrain it with "
            "`madoguchi train` or install the matching version"
        )
    if not isinstance(pipeline, Pipeline):
        raise ModelError(f"{path}: the file holds no scikit-learn Pipeline")
    return pipeline, meta
