"""Save and load named arrays as .npz files that never run code when read."""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from minigrad.tensor import Tensor

METADATA_KEY = "__metadata__"


def save(state: Mapping[str, Any], path: str | os.PathLike, metadata: dict | None = None) -> None:
    """Write named arrays (and optional JSON-able metadata) to `path` atomically.

    The file is written beside its destination and renamed into place, so a
    crash mid-write leaves any earlier file at `path` whole.
    """
    path = Path(path)
    arrays = {
        name: value.data if isinstance(value, Tensor) else np.asarray(value)
        for name, value in state.items()
    }
    for name, array in arrays.items():
        if array.dtype == object:
            raise TypeError(
                f"save: {name!r} is an object array, which .npz cannot hold without pickle"
            )
    if metadata is not None:
        arrays[METADATA_KEY] = np.array(json.dumps(metadata))
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _open(path: str | os.PathLike) -> Any:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint file at {path}")
    if path.is_dir():
        raise ValueError(f"{path} is a folder; expected a .npz file written by minigrad.save")
    with open(path, "rb") as f:
        start = f.read(4)
    if start != b"PK\x03\x04":  # every .npz is a zip archive
        raise ValueError(
            f"{path} is not a .npz archive (it does not begin like a zip file); "
            "expected a file written by minigrad.save"
        )
    try:
        return np.load(path, allow_pickle=False)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as error:
        raise ValueError(f"{path} is not a readable .npz file ({_plainly(error)})") from None


def _plainly(error: BaseException) -> str:
    """NumPy's reason, except that pickled data is named as such: it is never loaded."""
    if "pickle" in str(error):
        return "it holds pickled Python objects, which are never loaded"
    return str(error)


def load(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read the arrays saved by `save`; pickled objects are refused, never run."""
    with _open(path) as archive:
        try:
            return {name: archive[name] for name in archive.files if name != METADATA_KEY}
        except (zipfile.BadZipFile, ValueError, OSError, EOFError) as error:
            raise ValueError(f"{path} is damaged: {_plainly(error)}") from None


def load_metadata(path: str | os.PathLike) -> dict:
    """Read the metadata saved with `save`, or {} if there is none."""
    with _open(path) as archive:
        if METADATA_KEY not in archive.files:
            return {}
        try:
            return json.loads(str(archive[METADATA_KEY]))
        except (zipfile.BadZipFile, ValueError, OSError, EOFError) as error:
            raise ValueError(f"{path} has damaged metadata: {_plainly(error)}") from None
