"""A training run's checkpoint: one .npz of arrays with its metadata, plus a readable .json.

`ckpt.npz` holds the model's parameters (`model.<name>`), the optimizer's
moments (`optim.<index>.<name>`) and, as embedded JSON, everything else:
model and training configuration (with the position encoding), iteration,
tokenizer (its characters, or its BPE tokens' bytes in hex with the split
pattern), random-generator states.  `ckpt.json` repeats that metadata for
people to read; loading uses only the .npz, which is written atomically, so
a crash mid-save leaves the previous checkpoint whole.  Nothing here
unpickles, and a damaged or tampered file (missing fields or arrays, NaN or
inf values, arrays that do not fit the model) is refused with a ValueError
naming the file and what is wrong.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from minigrad import nn, optim
from minigrad.serialization import load, load_metadata, save
from models.gpt import GPTConfig
from models.tokenizers import tokenizer_from_dict

CHECKPOINT = "ckpt.npz"
FORMAT = "minigrad-gpt-checkpoint/1"
# The metadata fields every checkpoint has, and what each must be.
REQUIRED = {
    "iter_num": (int, "a whole number at least 0"),
    "best_val_loss": ((int, float), "a number"),
    "model": (dict, "a mapping"),
    "train": (dict, "a mapping"),
    "tokenizer": (dict, "a mapping"),
    "rng": (dict, "a mapping"),
}


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
        metadata["optimizer"] = {
            "param_groups": state["param_groups"],
            "scalars": scalars,
            "arrays": sorted(name for name in arrays if name.startswith("optim.")),
        }
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
        ValueError: when the file is damaged or not a minigrad-gpt checkpoint:
            not a readable .npz, another format, a metadata field missing or
            of the wrong type, an unusable model configuration, a missing
            array, or an array holding NaN or inf.
    """
    path = checkpoint_path(out_dir)
    if not path.exists():
        raise FileNotFoundError(f"--out_dir: no checkpoint at {path}; train one first")
    metadata = load_metadata(path)
    if not isinstance(metadata, dict):
        raise ValueError(
            f"{path} is damaged: its metadata is a {type(metadata).__name__}, expected a "
            "JSON object"
        )
    if metadata.get("format") != FORMAT:
        raise ValueError(
            f"{path} is not a minigrad-gpt checkpoint (format {metadata.get('format')!r})"
        )
    for key, (kind, expected) in REQUIRED.items():
        value = metadata.get(key)
        if (
            not isinstance(value, kind)
            or isinstance(value, bool)
            or (key == "iter_num" and value < 0)
        ):
            raise ValueError(
                f"{path} is damaged: metadata field {key!r} is {value!r}, expected {expected}"
            )
    try:
        config = GPTConfig(**metadata["model"])
        tokenizer = tokenizer_from_dict(metadata["tokenizer"])
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(
            f"{path} is damaged: its model or tokenizer description is unusable "
            f"({type(error).__name__}: {error})"
        ) from None
    if tokenizer.vocab_size != config.vocab_size:
        raise ValueError(
            f"{path} is damaged: its tokenizer has {tokenizer.vocab_size} tokens and its "
            f"model a vocabulary of {config.vocab_size}; they must be equal"
        )
    arrays = load(path)
    saved_optimizer = metadata.get("optimizer")
    listed = saved_optimizer.get("arrays", []) if isinstance(saved_optimizer, dict) else []
    missing = [name for name in listed if name not in arrays]
    if missing:
        more = f" and {len(missing) - 2} more" if len(missing) > 2 else ""
        raise ValueError(f"{path} is damaged: optimizer arrays {missing[:2]}{more} are missing")
    if not any(name.startswith("model.") for name in arrays):
        raise ValueError(f"{path} is damaged: it holds no model.* arrays")
    for name, array in arrays.items():
        if array.dtype.kind != "f" and name.startswith(("model.", "optim.")):
            raise ValueError(
                f"{path} is damaged: array {name!r} has dtype {array.dtype}, expected "
                "floating point, as weights and optimizer moments are"
            )
        if np.issubdtype(array.dtype, np.inexact) and not np.isfinite(array).all():
            raise ValueError(f"{path} is damaged: array {name!r} holds NaN or inf")
    return arrays, metadata


def restore_model(
    model: nn.Module, arrays: dict[str, np.ndarray], out_dir: str | os.PathLike
) -> None:
    """Copy the checkpoint's parameters into `model`, or raise ValueError naming the file."""
    try:
        model.load_state_dict(model_state(arrays))
    except (KeyError, ValueError) as error:
        message = error.args[0] if error.args else error
        raise ValueError(
            f"{checkpoint_path(out_dir)} does not fit the model it describes: {message}"
        ) from None


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
