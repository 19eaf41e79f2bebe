"""Save and load named arrays as .npz files that never run code when read."""

from __future__ import annotations

import glob
import json
import os
import secrets
import time
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
    if path.is_dir():
        raise IsADirectoryError(f"save: {path} is a folder; expected a file path to write")
    if not isinstance(state, Mapping):
        raise TypeError(
            f"save: state must map names to arrays (a dict), got {type(state).__name__}"
        )
    arrays = {}
    for name, value in state.items():
        if name == METADATA_KEY:
            raise ValueError(
                f"save: the name {METADATA_KEY!r} is reserved for the metadata; rename that array"
            )
        if not isinstance(name, str) or name.endswith(".npy"):
            raise ValueError(
                f"save: names must be strings not ending in '.npy' (each array is stored as "
                f"name + '.npy', and loading strips it again), got {name!r}"
            )
        try:
            array = value.data if isinstance(value, Tensor) else np.asarray(value)
        except ValueError as error:
            raise TypeError(
                f"save: {name!r} is not an array ({type(value).__name__}: {error}); "
                "expected arrays or Tensors, one per name"
            ) from None
        if array.dtype == object:
            raise TypeError(
                f"save: {name!r} is an object array ({type(value).__name__}), which .npz "
                "cannot hold without pickle; expected arrays or Tensors, one per name"
            )
        arrays[name] = array
    if metadata is not None:
        try:
            arrays[METADATA_KEY] = np.array(json.dumps(metadata))
        except (TypeError, ValueError) as error:
            raise TypeError(
                f"save: metadata must be JSON-serialisable (numbers, strings, lists, dicts): "
                f"{error}"
            ) from None
    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.time()
    handle, tmp = _create_temporary(path)
    try:
        with os.fdopen(handle, "wb") as f:
            _write_npz(f, arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _remove_stale_temporaries(path, started)


def _write_npz(f: Any, arrays: Mapping[str, np.ndarray]) -> None:
    """What np.savez writes, one uncompressed name.npy per array, for any names.

    (np.savez takes the names as keyword arguments, so it cannot store an
    array named 'file' or 'allow_pickle'.)
    """
    with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, array in arrays.items():
            with archive.open(name + ".npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, array, allow_pickle=False)


def _create_temporary(path: Path) -> tuple[int, str]:
    """Open a new file beside `path` for writing: (descriptor, name).

    Made with mode 0666 less the umask, as `open` would make `path` itself
    (tempfile.mkstemp would make it 0600).
    """
    while True:
        tmp = str(path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _BINARY, 0o666), tmp
        except FileExistsError:
            continue


_BINARY = getattr(os, "O_BINARY", 0)  # Windows would otherwise translate newlines

# Temporary files this much older than a successful save are leftovers of killed saves.
STALE_SECONDS = 60


def _remove_stale_temporaries(path: Path, before: float) -> None:
    """Delete temporary files that earlier saves to `path` left when they were killed.

    A save cleans up after itself unless the process dies mid-write (SIGKILL,
    power loss).  Files last written well before this save began are such
    leftovers; a save still writing elsewhere keeps touching its file.
    """
    for leftover in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        try:
            if leftover.stat().st_mtime < before - STALE_SECONDS:
                leftover.unlink()
        except OSError:  # gone already, or not ours to remove
            pass


def _open(path: str | os.PathLike) -> Any:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint file at {path}")
    if path.is_dir():
        raise ValueError(f"{path} is a folder; expected a .npz file written by minigrad.save")
    with open(path, "rb") as f:
        start = f.read(4)
    if start not in (b"PK\x03\x04", b"PK\x05\x06"):  # a zip archive, or an empty one
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
