"""A training run's checkpoint: one .npz of arrays with its metadata, plus a readable .json.

`ckpt.npz` holds the model's parameters (`model.<name>`), the optimizer's
moments (`optim.<index>.<name>`) and, as embedded JSON, everything else:
model and training configuration (with the position encoding), iteration,
tokenizer (its characters, or its BPE tokens' bytes in hex with the split
pattern), random-generator states.  `ckpt.json` repeats that metadata for
people to read; loading uses only the .npz, which is written atomically, so
a crash mid-save leaves the previous checkpoint whole.  Nothing here
unpickles.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from minigrad import nn, optim
from minigrad.serialization import load, load_metadata, save

CHECKPOINT = "ckpt.npz"
FORMAT = "minigrad-gpt-checkpoint/1"


def checkpoint_path(out_dir: str | os.PathLike) -> Path:
    return Path(out_dir) / CHECKPOINT


def save_checkpoint(
    out_dir: str | os.PathLike,
    model: nn.Module,
    optimizer: optim.Optimizer | None,
    metadata: dict[str, Any],
) -> Path:
    """Write model, optimizer and metadata to `out_dir/ckpt.npz` (and `ckpt.json`)."""
    arrays = {f"model.{name}": array for name, array in model.state_dict().items()}
    metadata = {"format": FORMAT, **metadata}
    if optimizer is not None:
        state = optimizer.state_dict()
        scalars: dict[str, dict[str, Any]] = {}
        for index, entries in state["state"].items():
            for key, value in entries.items():
                if isinstance(value, np.ndarray):
                    arrays[f"optim.{index}.{key}"] = value
                else:
                    scalars.setdefault(str(index), {})[key] = value
        metadata["optimizer"] = {"param_groups": state["param_groups"], "scalars": scalars}
    path = checkpoint_path(out_dir)
    save(arrays, path, metadata=metadata)
    readable = path.with_suffix(".json")
    tmp = readable.with_name(f".{readable.name}.tmp")
    tmp.write_text(json.dumps(metadata, indent=2) + "\n")
    os.replace(tmp, readable)
    return path


def load_checkpoint(out_dir: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read `out_dir/ckpt.npz`: (arrays by name, metadata).

    Raises:
        FileNotFoundError: when there is no checkpoint in `out_dir`.
        ValueError: when the file is damaged or not a minigrad-gpt checkpoint.
    """
    path = checkpoint_path(out_dir)
    if not path.exists():
        raise FileNotFoundError(f"--out_dir: no checkpoint at {path}; train one first")
    metadata = load_metadata(path)
    if metadata.get("format") != FORMAT:
        raise ValueError(
            f"{path} is not a minigrad-gpt checkpoint (format {metadata.get('format')!r})"
        )
    return load(path), metadata


def model_state(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {name[len("model.") :]: a for name, a in arrays.items() if name.startswith("model.")}


def optimizer_state(arrays: dict[str, np.ndarray], metadata: dict[str, Any]) -> dict[str, Any]:
    """Rebuild the optimizer's `state_dict()` from the checkpoint."""
    saved = metadata["optimizer"]
    state: dict[int, dict[str, Any]] = {}
    for index, scalars in saved["scalars"].items():
        state.setdefault(int(index), {}).update(scalars)
    for name, array in arrays.items():
        if name.startswith("optim."):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = array
    groups = [
        {**g, "betas": tuple(g["betas"])} if "betas" in g else g for g in saved["param_groups"]
    ]
    return {"state": state, "param_groups": groups}
