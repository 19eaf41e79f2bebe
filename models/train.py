"""Train a GPT: `minigrad-gpt train` or `python -m models.train`.

The defaults are nanoGPT's small CPU configuration on the bundled
Shakespeare corpus, one token per character; `--tokenizer bpe --vocab_size 512`
learns byte-pair merges on the corpus instead.  Every `eval_interval`
iterations the trainer prints the train and validation loss and saves a
checkpoint to `out_dir`; `--resume` continues from it.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import asdict, dataclass, fields
from typing import Any, Sequence

import numpy as np

import minigrad
from minigrad import optim
from models.checkpoint import (
    checkpoint_path,
    load_checkpoint,
    model_state,
    optimizer_state,
    save_checkpoint,
)
from models.data import get_batch, load_text, split_ids
from models.gpt import GPT, POS_ENCODINGS, GPTConfig
from models.tokenizers import build_tokenizer, tokenizer_from_dict

MODEL_FIELDS = ("block_size", "n_layer", "n_head", "n_embd", "dropout", "bias", "pos_encoding")


@dataclass
class TrainConfig:
    """Everything a training run reads; each field is also a command-line flag."""

    out_dir: str = "out-shakespeare-char"
    data: str | None = None
    tokenizer: str = "char"
    vocab_size: int = 512
    resume: bool = False
    overwrite: bool = False
    # model
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    block_size: int = 64
    dropout: float = 0.0
    bias: bool = False
    pos_encoding: str = "learned"
    # optimisation
    batch_size: int = 12
    max_iters: int = 2000
    learning_rate: float = 1e-3
    min_lr: float = 1e-4
    warmup_iters: int = 100
    lr_decay_iters: int = 2000
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 1.0
    # evaluation and logging
    eval_interval: int = 250
    eval_iters: int = 20
    log_interval: int = 10
    seed: int = 1337


HELP = {
    "out_dir": "folder for the checkpoint (ckpt.npz and ckpt.json)",
    "data": "a UTF-8 text file to train on (default: the bundled Shakespeare corpus)",
    "tokenizer": "'char': one token per character; 'bpe': byte-pair merges learned on --data",
    "vocab_size": "tokens of the BPE tokenizer: 256 bytes plus this minus 256 merges",
    "resume": "continue from the checkpoint in --out_dir",
    "overwrite": "start afresh even if --out_dir already holds a checkpoint",
    "n_layer": "transformer blocks",
    "n_head": "attention heads per block (must divide --n_embd)",
    "n_embd": "embedding width",
    "block_size": "context length in tokens",
    "dropout": "dropout probability",
    "bias": "use biases in Linear and LayerNorm layers",
    "pos_encoding": "position vectors: 'learned' (nanoGPT's wpe) or 'sinusoidal' (fixed)",
    "batch_size": "sequences per iteration",
    "max_iters": "total training iterations",
    "learning_rate": "peak learning rate",
    "min_lr": "learning rate at the end of the cosine decay",
    "warmup_iters": "iterations of linear warm-up",
    "lr_decay_iters": "iteration at which the cosine decay reaches --min_lr",
    "weight_decay": "AdamW decoupled weight decay for matrices and embeddings",
    "beta1": "AdamW beta1",
    "beta2": "AdamW beta2",
    "grad_clip": "clip the gradient's global norm to this (0 turns clipping off)",
    "eval_interval": "evaluate and save a checkpoint every this many iterations",
    "eval_iters": "batches per split in each evaluation",
    "log_interval": "print the training loss every this many iterations",
    "seed": "seed for initialisation, batches and dropout",
}

CHOICES = {"tokenizer": ("char", "bpe"), "pos_encoding": POS_ENCODINGS}
POSITIVE = {
    "n_layer",
    "n_head",
    "n_embd",
    "block_size",
    "batch_size",
    "eval_interval",
    "eval_iters",
    "log_interval",
}
NON_NEGATIVE = {
    "max_iters",
    "learning_rate",
    "min_lr",
    "warmup_iters",
    "lr_decay_iters",
    "weight_decay",
    "grad_clip",
}


def validate(config: TrainConfig) -> None:
    """Raise ValueError naming the first setting that makes no sense."""
    for name in POSITIVE:
        if getattr(config, name) <= 0:
            raise ValueError(f"--{name} must be positive, got {getattr(config, name)}")
    for name in NON_NEGATIVE:
        if getattr(config, name) < 0:
            raise ValueError(f"--{name} must be >= 0, got {getattr(config, name)}")
    if config.n_embd % config.n_head:
        raise ValueError(
            f"--n_embd ({config.n_embd}) must be divisible by --n_head ({config.n_head})"
        )
    if not 0 <= config.dropout < 1:
        raise ValueError(f"--dropout must be in [0, 1), got {config.dropout}")
    for name in ("beta1", "beta2"):
        if not 0 <= getattr(config, name) < 1:
            raise ValueError(f"--{name} must be in [0, 1), got {getattr(config, name)}")
    for name, choices in CHOICES.items():
        if getattr(config, name) not in choices:
            raise ValueError(f"--{name} must be one of {choices}, got {getattr(config, name)!r}")
    if config.tokenizer == "bpe" and config.vocab_size < 256:
        raise ValueError(
            f"--vocab_size must be at least 256 (one token per byte), got {config.vocab_size}"
        )


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The command-line flags: one per TrainConfig field, defaults shown in --help."""
    parser = parser or argparse.ArgumentParser(
        prog="minigrad-gpt train", description="Train a GPT with minigrad."
    )
    parser.formatter_class = argparse.ArgumentDefaultsHelpFormatter
    defaults = TrainConfig()
    for f in fields(TrainConfig):
        default = getattr(defaults, f.name)
        if isinstance(default, bool):
            parser.add_argument(f"--{f.name}", action="store_true", help=HELP[f.name])
        else:
            kind = {"int": int, "float": float}.get(str(f.type), str)
            parser.add_argument(
                f"--{f.name}",
                type=kind,
                default=default,
                help=HELP[f.name],
                choices=CHOICES.get(f.name),
            )
    return parser


@minigrad.no_grad()
def estimate_loss(
    model: GPT, splits: dict[str, np.ndarray], config: TrainConfig, rng: np.random.Generator
) -> dict[str, float]:
    """Mean loss over `eval_iters` random batches of each split, in eval mode."""
    model.eval()
    result = {}
    for name, ids in splits.items():
        losses = []
        for _ in range(config.eval_iters):
            x, y = get_batch(ids, config.block_size, config.batch_size, rng)
            losses.append(model(x, y)[1].item())
        result[name] = float(np.mean(losses))
    model.train()
    return result


def _prepare(config: TrainConfig) -> dict[str, Any]:
    """Model, optimizer, data and generators for a fresh run or a resumed one."""
    saved_arrays: dict[str, np.ndarray] = {}
    metadata: dict[str, Any] = {}
    if config.resume:
        saved_arrays, metadata = load_checkpoint(config.out_dir)
        defaults = TrainConfig()
        for name in MODEL_FIELDS:  # checkpoints from before a field existed get its default
            setattr(config, name, metadata["model"].get(name, getattr(defaults, name)))
        config.tokenizer = metadata["tokenizer"]["kind"]
        config.vocab_size = metadata["train"].get("vocab_size", config.vocab_size)
        if config.data is None:
            config.data = metadata["train"].get("data")
    elif checkpoint_path(config.out_dir).exists() and not config.overwrite:
        raise FileExistsError(
            f"--out_dir: {checkpoint_path(config.out_dir)} already exists; pass --resume to "
            "continue it, --overwrite to replace it, or choose another --out_dir"
        )
    validate(config)

    text = load_text(config.data)
    started = time.perf_counter()
    tokenizer = (
        tokenizer_from_dict(metadata["tokenizer"])
        if config.resume
        else build_tokenizer(config.tokenizer, text, config.vocab_size)
    )
    tokenizer_seconds = time.perf_counter() - started
    ids = tokenizer.encode(text)
    train_ids, val_ids = split_ids(ids, config.block_size)

    minigrad.manual_seed(config.seed)
    model_config = GPTConfig(
        vocab_size=tokenizer.vocab_size, **{name: getattr(config, name) for name in MODEL_FIELDS}
    )
    model = GPT(model_config)
    optimizer = optim.AdamW(
        model.optimizer_groups(config.weight_decay),
        lr=config.learning_rate,
        betas=(config.beta1, config.beta2),
    )
    data_rng = np.random.default_rng([config.seed, 1])
    iter_num, best_val_loss = 0, math.inf
    if config.resume:
        model.load_state_dict(model_state(saved_arrays))
        optimizer.load_state_dict(optimizer_state(saved_arrays, metadata))
        iter_num = metadata["iter_num"]
        best_val_loss = metadata["best_val_loss"]
        data_rng.bit_generator.state = metadata["rng"]["data"]
        minigrad.random.generator().bit_generator.state = metadata["rng"]["minigrad"]
    return dict(
        model=model,
        optimizer=optimizer,
        tokenizer=tokenizer,
        data_rng=data_rng,
        splits={"train": train_ids, "val": val_ids},
        iter_num=iter_num,
        best_val_loss=best_val_loss,
        tokenizer_seconds=tokenizer_seconds,
    )


def train(config: TrainConfig, log: Any = print) -> dict[str, Any]:
    """Run training as configured; returns the last evaluation and where the checkpoint is.

    Returns:
        {"iter_num", "train_loss", "val_loss", "checkpoint", "history"}, where
        history lists (iteration, train loss, val loss) for every evaluation.
    """
    run = _prepare(config)
    model, optimizer, tokenizer = run["model"], run["optimizer"], run["tokenizer"]
    splits, data_rng = run["splits"], run["data_rng"]
    iter_num, best_val_loss = run["iter_num"], run["best_val_loss"]
    params = list(model.parameters())
    schedule = dict(
        max_lr=config.learning_rate,
        min_lr=config.min_lr,
        warmup_iters=config.warmup_iters,
        decay_iters=config.lr_decay_iters,
    )
    if tokenizer.kind == "bpe" and not config.resume:
        log(
            f"trained a BPE tokenizer of {tokenizer.vocab_size} tokens "
            f"in {run['tokenizer_seconds']:.2f}s"
        )
    log(f"number of parameters: {model.num_parameters() / 1e6:.2f}M")
    log(
        f"vocab size {tokenizer.vocab_size}, {len(splits['train']):,} train tokens, "
        f"{len(splits['val']):,} val tokens"
    )
    if config.resume:
        log(f"resuming from iteration {iter_num} in {config.out_dir}")

    def metadata() -> dict[str, Any]:
        return {
            "iter_num": iter_num,
            "best_val_loss": best_val_loss,
            "model": model.config.to_dict(),
            "train": asdict(config),
            "tokenizer": tokenizer.to_dict(),
            "rng": {
                "data": data_rng.bit_generator.state,
                "minigrad": minigrad.random.generator().bit_generator.state,
            },
        }

    history: list[tuple[int, float, float]] = []
    last_eval: dict[str, float] = {}
    path = checkpoint_path(config.out_dir)
    resumed_at = iter_num if config.resume else None
    t0 = time.perf_counter()
    while True:
        at_eval = iter_num % config.eval_interval == 0 or iter_num == config.max_iters
        if at_eval and iter_num != resumed_at:
            last_eval = estimate_loss(model, splits, config, data_rng)
            history.append((iter_num, last_eval["train"], last_eval["val"]))
            log(
                f"step {iter_num}: train loss {last_eval['train']:.4f}, "
                f"val loss {last_eval['val']:.4f}"
            )
            best_val_loss = min(best_val_loss, last_eval["val"])
            if iter_num > 0:
                save_checkpoint(config.out_dir, model, optimizer, metadata())
            t0 = time.perf_counter()
        if iter_num >= config.max_iters:
            break

        lr = optim.warmup_cosine(iter_num, **schedule)
        for group in optimizer.param_groups:
            group["lr"] = lr
        x, y = get_batch(splits["train"], config.block_size, config.batch_size, data_rng)
        _, loss = model(x, y)
        loss.backward()
        if config.grad_clip > 0:
            optim.clip_grad_norm_(params, config.grad_clip)
        optimizer.step()
        optimizer.zero_grad()

        t1 = time.perf_counter()
        if iter_num % config.log_interval == 0:
            log(f"iter {iter_num}: loss {loss.item():.4f}, time {(t1 - t0) * 1000:.2f}ms")
        t0 = t1
        iter_num += 1

    if path.exists():
        log(f"checkpoint: {path}")
    return {
        "iter_num": iter_num,
        "train_loss": last_eval.get("train"),
        "val_loss": last_eval.get("val"),
        "checkpoint": path,
        "history": history,
    }


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)})


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        train(config_from_args(args))
    except (ValueError, FileNotFoundError, FileExistsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
