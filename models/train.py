"""Train a GPT: `minigrad-gpt train` or `python -m models.train`.

The defaults are nanoGPT's small CPU configuration on the bundled
Shakespeare corpus, one token per character; `--tokenizer bpe --vocab_size 512`
learns byte-pair merges on the corpus instead.  Every `eval_interval`
iterations the trainer prints the train and validation loss and saves a
checkpoint to `out_dir`; `--resume` continues from it.

Two guards keep a run from being lost.  A NaN or infinite loss, gradient or
parameter stops training before the optimizer step, with the iteration and
the first offending parameter named, and nothing is saved, so the last good
checkpoint stays as it was.  The first Ctrl-C (SIGINT) lets the current
iteration finish, saves a checkpoint from which `--resume` continues exactly,
and exits with status 130; a second Ctrl-C stops at once without saving.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

import minigrad
from minigrad import optim
from models.checkpoint import (
    checkpoint_path,
    load_checkpoint,
    optimizer_state,
    restore_model,
    save_checkpoint,
)
from models.commands import DefaultsShown
from models.data import get_batch, load_text, split_ids
from models.gpt import GPT, POS_ENCODINGS, GPTConfig
from models.tokenizers import build_tokenizer, tokenizer_from_dict

MODEL_FIELDS = ("block_size", "n_layer", "n_head", "n_embd", "dropout", "bias", "pos_encoding")
# The model's shape, which a resumed run keeps; dropout, as in nanoGPT, may change.
SHAPE_FIELDS = tuple(name for name in MODEL_FIELDS if name != "dropout")
# Other settings a resumed run cannot change, and what they fix.
RESUME_FIXED = {
    "tokenizer": "tokenizer",
    "vocab_size": "tokenizer",
    "seed": "random generators, which continue where they stopped",
}


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
    "seed",
    "max_iters",
    "learning_rate",
    "min_lr",
    "warmup_iters",
    "lr_decay_iters",
    "weight_decay",
    "grad_clip",
}


def _check_attention_fits(config: TrainConfig) -> None:
    """Refuse a run whose attention weights alone outgrow this machine's memory.

    Each layer keeps batch x heads x block x block float32 weights for the
    backward pass; a block of 100,000 would need terabytes, and the kernel would
    kill the process without a word instead of NumPy raising MemoryError.
    """
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # no sysconf: nothing to compare with
        return
    needed = 4 * config.n_layer * config.batch_size * config.n_head * config.block_size**2
    if needed > physical:
        raise ValueError(
            f"--block_size {config.block_size} with --batch_size {config.batch_size}, "
            f"--n_head {config.n_head} and --n_layer {config.n_layer} needs "
            f"{needed / 2**30:,.0f} GiB for the attention weights alone, more than this "
            f"machine's {physical / 2**30:,.0f} GiB; lower --block_size or --batch_size"
        )


def validate(config: TrainConfig) -> None:
    """Raise ValueError naming the first setting that makes no sense."""
    for f in fields(config):
        value = getattr(config, f.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"--{f.name} must be a finite number, got {value}")
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
    if config.min_lr > config.learning_rate:
        raise ValueError(
            f"--min_lr ({config.min_lr:g}) is above --learning_rate ({config.learning_rate:g}); "
            "expected at most the rate it decays from"
        )
    _check_attention_fits(config)
    if config.lr_decay_iters < config.warmup_iters:
        raise ValueError(
            f"--lr_decay_iters ({config.lr_decay_iters}) ends before --warmup_iters "
            f"({config.warmup_iters}); expected the decay to end after the warm-up"
        )


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The command-line flags: one per TrainConfig field, defaults shown in --help."""
    parser = parser or argparse.ArgumentParser(
        prog="minigrad-gpt train", description="Train a GPT with minigrad."
    )
    parser.formatter_class = DefaultsShown
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
    parser.allow_abbrev = False  # no prefixes: `--lr` would quietly stand for another flag
    return parser


# ---- guards: a run that diverges or is interrupted keeps its last good checkpoint ----


class TrainingDiverged(FloatingPointError):
    """The loss, a gradient or a parameter stopped being finite; nothing was saved."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) or SIGTERM stopped training after the current state was saved.

    Attributes:
        checkpoint: where the checkpoint was written.
        iter_num: the iteration `--resume` continues from.
        signum: the signal that asked training to stop.
    """

    def __init__(self, checkpoint: Path, iter_num: int, signum: int = signal.SIGINT) -> None:
        super().__init__(f"interrupted at iteration {iter_num}; checkpoint saved to {checkpoint}")
        self.checkpoint, self.iter_num, self.signum = checkpoint, iter_num, signum


def first_nonfinite(named_arrays: Iterable[tuple[str, np.ndarray | None]]) -> str | None:
    """The name of the first array that holds a NaN or an infinity (None entries skipped)."""
    for name, array in named_arrays:
        if array is not None and not np.isfinite(array).all():
            return name
    return None


def _divergence(
    iter_num: int,
    problem: str,
    named: list[tuple[str, Any]],
    last_saved: tuple[Path, int] | None,
    checkpoint: Path | None = None,
) -> TrainingDiverged:
    """The error that stops a run: what went wrong, where, and what was kept."""
    culprit = first_nonfinite((name, p.data) for name, p in named)
    if culprit is not None:
        where = f"the first parameter holding NaN or inf is {culprit}"
    else:
        culprit = first_nonfinite((name, p.grad) for name, p in named)
        where = (
            f"the first parameter whose gradient holds NaN or inf is {culprit}"
            if culprit is not None
            else "every parameter and gradient is finite, so an activation overflowed"
        )
    if last_saved is not None:
        kept = (
            f"the last good checkpoint, {last_saved[0]} (iteration {last_saved[1]}), is "
            "unchanged; --resume with a lower --learning_rate continues from it"
        )
    elif checkpoint is not None and checkpoint.exists():  # an --overwrite run
        kept = (
            f"nothing of this run was written, and {checkpoint} still holds the earlier run "
            "it was to replace; a lower --learning_rate may help"
        )
    else:
        kept = "no checkpoint was written; a lower --learning_rate may help"
    return TrainingDiverged(
        f"iteration {iter_num}: {problem}; {where}. Training stopped without saving: {kept}."
    )


class _InterruptRequest:
    """Turns the first SIGINT or SIGTERM into a request to stop at the next iteration.

    Stopping there, rather than wherever the signal lands, means model,
    optimizer, iteration and generators are saved in one consistent state.
    A second signal has its default effect at once: SIGINT raises
    KeyboardInterrupt, SIGTERM ends the process.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.requested: int | None = None  # the signal received
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = signum
        for number in self.SIGNALS:
            default = signal.default_int_handler if number == signal.SIGINT else signal.SIG_DFL
            signal.signal(number, default)

    def __enter__(self) -> _InterruptRequest:
        # NOTE: signal handlers can only be set from the main thread; elsewhere
        # (a worker thread, some notebooks) the signals keep their default effect.
        if threading.current_thread() is threading.main_thread():
            self._previous = {n: signal.signal(n, self._handle) for n in self.SIGNALS}
        return self

    def __exit__(self, *exc: object) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)


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


def _check_writable(out_dir: str) -> None:
    """Find out now, not at the first checkpoint, if out_dir cannot hold one."""
    folder, path = Path(out_dir), checkpoint_path(out_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise ValueError(
            f"--out_dir: cannot write in {out_dir} ({error.strerror or error}); "
            "expected a folder that can be created and written"
        ) from None
    if path.is_dir():
        raise ValueError(f"--out_dir: {path} is a folder; expected room for the checkpoint file")


def _prepare(config: TrainConfig) -> dict[str, Any]:
    """Model, optimizer, data and generators for a fresh run or a resumed one."""
    saved_arrays: dict[str, np.ndarray] = {}
    metadata: dict[str, Any] = {}
    if config.resume:
        saved_arrays, metadata = load_checkpoint(config.out_dir)
        defaults = TrainConfig()
        for name in SHAPE_FIELDS:  # checkpoints from before a field existed get its default
            setattr(config, name, metadata["model"].get(name, getattr(defaults, name)))
        config.tokenizer = metadata["tokenizer"]["kind"]
        config.vocab_size = metadata["train"].get("vocab_size", config.vocab_size)
        if config.data is None:
            config.data = metadata["train"].get("data")
    validate(config)  # the settings first: a bad one is named even where a checkpoint exists
    if not config.resume:
        if not str(config.out_dir).strip():
            raise ValueError("--out_dir is empty; name a folder for the checkpoint")
        if checkpoint_path(config.out_dir).is_dir():
            raise ValueError(
                f"--out_dir: {checkpoint_path(config.out_dir)} is a folder; expected room for "
                "the checkpoint file"
            )
        if checkpoint_path(config.out_dir).exists() and not config.overwrite:
            raise FileExistsError(
                f"--out_dir: {checkpoint_path(config.out_dir)} already exists; pass --resume "
                "to continue it, --overwrite to replace it, or choose another --out_dir"
            )

    text = load_text(config.data)
    if config.data is not None:  # saved as a full path, so --resume works from anywhere
        config.data = str(Path(config.data).resolve())
    started = time.perf_counter()
    tokenizer = (
        tokenizer_from_dict(metadata["tokenizer"])
        if config.resume
        else build_tokenizer(config.tokenizer, text, config.vocab_size)
    )
    tokenizer_seconds = time.perf_counter() - started
    try:
        ids = tokenizer.encode(text)
    except ValueError as error:  # a resumed run's tokenizer meeting another text
        raise ValueError(f"--data {config.data}: {error}") from None
    train_ids, val_ids = split_ids(ids, config.block_size)
    _check_writable(config.out_dir)

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
        restore_model(model, saved_arrays, config.out_dir)
        try:
            optimizer.load_state_dict(optimizer_state(saved_arrays, metadata))
            data_rng.bit_generator.state = metadata["rng"]["data"]
            minigrad.random.generator().bit_generator.state = metadata["rng"]["minigrad"]
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(
                f"--resume: {checkpoint_path(config.out_dir)} is damaged: its optimizer or "
                f"generator state cannot be restored ({type(error).__name__}: {error})"
            ) from None
        iter_num = metadata["iter_num"]
        best_val_loss = metadata["best_val_loss"]
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

    Raises:
        TrainingDiverged: when the loss, a gradient or a parameter is NaN or
            infinite; the last good checkpoint is left untouched.
        TrainingInterrupted: on Ctrl-C (SIGINT) or SIGTERM, after saving the current state.
    """
    run = _prepare(config)
    model, optimizer, tokenizer = run["model"], run["optimizer"], run["tokenizer"]
    splits, data_rng = run["splits"], run["data_rng"]
    iter_num, best_val_loss = run["iter_num"], run["best_val_loss"]
    named = list(model.named_parameters())
    params = [p for _, p in named]
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

    path = checkpoint_path(config.out_dir)
    last_saved = (path, iter_num) if config.resume else None

    def save() -> None:
        """Checkpoint the current state, unless a parameter is no longer finite."""
        nonlocal last_saved
        if first_nonfinite((name, p.data) for name, p in named) is not None:
            raise _divergence(iter_num, "a parameter is not finite", named, last_saved, path)
        save_checkpoint(config.out_dir, model, optimizer, metadata())
        last_saved = (path, iter_num)

    history: list[tuple[int, float, float]] = []
    last_eval: dict[str, float] = {}
    resumed_at = iter_num if config.resume else None
    t0 = time.perf_counter()
    with _InterruptRequest() as interrupt:
        while True:
            at_eval = iter_num % config.eval_interval == 0 or iter_num == config.max_iters
            if at_eval and iter_num != resumed_at:
                last_eval = estimate_loss(model, splits, config, data_rng)
                history.append((iter_num, last_eval["train"], last_eval["val"]))
                log(
                    f"step {iter_num}: train loss {last_eval['train']:.4f}, "
                    f"val loss {last_eval['val']:.4f}"
                )
                if not all(math.isfinite(value) for value in last_eval.values()):
                    raise _divergence(
                        iter_num, "the evaluated loss is not finite", named, last_saved, path
                    )
                best_val_loss = min(best_val_loss, last_eval["val"])
                if iter_num > 0 or iter_num >= config.max_iters:
                    save()
                t0 = time.perf_counter()
            if iter_num >= config.max_iters:
                break
            # Checked here, after any evaluation of this iteration and before its
            # step, so that --resume (which skips the evaluation at the iteration it
            # resumes from) draws exactly the batches this run would have drawn.
            if interrupt.requested is not None:
                save()
                log(f"interrupted at iteration {iter_num}: saved {path}; continue with --resume")
                raise TrainingInterrupted(path, iter_num, interrupt.requested)

            lr = optim.warmup_cosine(iter_num, **schedule)
            for group in optimizer.param_groups:
                group["lr"] = lr
            x, y = get_batch(splits["train"], config.block_size, config.batch_size, data_rng)
            _, loss = model(x, y)
            loss.backward()
            loss_value = loss.item()
            if not math.isfinite(loss_value):
                raise _divergence(iter_num, f"the loss is {loss_value}", named, last_saved, path)
            if first_nonfinite((name, p.grad) for name, p in named) is not None:
                raise _divergence(iter_num, "a gradient is not finite", named, last_saved, path)
            if config.grad_clip > 0:
                optim.clip_grad_norm_(params, config.grad_clip)
            optimizer.step()
            optimizer.zero_grad()

            t1 = time.perf_counter()
            if iter_num % config.log_interval == 0:
                log(f"iter {iter_num}: loss {loss_value:.4f}, time {(t1 - t0) * 1000:.2f}ms")
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


def given_flags(argv: Sequence[str]) -> set[str]:
    """The settings `argv` gives, as argparse reads them (`--max_iters=5` too)."""
    left_out = object()  # not a string, so argparse does not convert it
    parser = build_parser()
    parser.set_defaults(**{f.name: left_out for f in fields(TrainConfig)})
    parsed = vars(parser.parse_args(argv))
    return {name for name, value in parsed.items() if value is not left_out}


def apply_saved_settings(config: TrainConfig, given: set[str]) -> None:
    """On --resume, take every setting not `given` on the command line from the checkpoint.

    So `--resume` alone continues a run exactly as it was started; flags given
    with it (say a larger --max_iters) still apply, except the model's shape,
    which a checkpoint fixes.
    """
    if not config.resume:
        return
    if config.overwrite:
        raise ValueError("--resume continues the checkpoint and --overwrite replaces it: pick one")
    _, metadata = load_checkpoint(config.out_dir)
    saved = metadata["train"]
    for name in (*SHAPE_FIELDS, *RESUME_FIXED):
        if name == "vocab_size" and metadata["tokenizer"].get("kind") != "bpe":
            continue  # a character tokenizer has no size to keep
        if name in given and name in saved and getattr(config, name) != saved[name]:
            what = "model" if name in SHAPE_FIELDS else RESUME_FIXED[name]
            raise ValueError(
                f"--{name}: a resumed run keeps the checkpoint's {what} ({name}={saved[name]!r}); "
                f"got {getattr(config, name)!r}"
            )
    defaults = TrainConfig()
    for f in fields(TrainConfig):
        if f.name not in given and f.name in saved and f.name not in ("resume", "overwrite"):
            value, default = saved[f.name], getattr(defaults, f.name)
            if not _same_kind(value, default):
                raise ValueError(
                    f"{checkpoint_path(config.out_dir)} is damaged: its training setting "
                    f"{f.name!r} is {value!r}, expected {_kind_name(default)}"
                )
            setattr(config, f.name, value)
    done = metadata["iter_num"]
    if config.max_iters <= done:
        raise ValueError(
            f"--max_iters {config.max_iters}: the checkpoint in {config.out_dir} is already at "
            f"iteration {done}, so there is nothing to train; give a larger --max_iters"
        )


def _same_kind(value: Any, default: Any) -> bool:
    """Whether a saved setting is of the kind its flag takes (an int will do for a float)."""
    if default is None or isinstance(default, str):
        return value is None or isinstance(value, str)
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, int):
        return isinstance(value, int)
    return isinstance(value, (int, float))


def _kind_name(default: Any) -> str:
    if default is None or isinstance(default, str):
        return "a string"
    return {bool: "true or false", int: "a whole number"}.get(type(default), "a number")


def main(argv: Sequence[str] | None = None) -> int:
    """Train from command-line flags; the exit status says how the run ended.

    0: finished.  1: stopped because the loss or a gradient was NaN or
    infinite.  2: a flag, the corpus or the checkpoint was unusable.
    130: interrupted by Ctrl-C (the checkpoint saved, unless pressed twice);
    143: stopped by SIGTERM (the checkpoint saved).
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    config = config_from_args(args)
    given = given_flags(argv)
    try:
        apply_saved_settings(config, given)
        if "vocab_size" in given and config.tokenizer != "bpe":
            raise ValueError(
                f"--vocab_size {config.vocab_size}: it sizes the BPE tokenizer, and this run's "
                f"tokenizer is {config.tokenizer!r} (one token per character of the text); "
                "add --tokenizer bpe or leave --vocab_size out"
            )
        # A diverging run overflows on its way to nan; the guard reports it in one line.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            train(config)
    except TrainingDiverged as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except (ValueError, FileNotFoundError, FileExistsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except MemoryError as error:  # NumPy's names the array it could not allocate
        kept = checkpoint_path(config.out_dir)
        print(
            f"error: out of memory ({error}); each step's arrays grow with --batch_size "
            f"{config.batch_size}, --block_size {config.block_size}, --n_embd {config.n_embd} "
            f"and --n_layer {config.n_layer}: lower them; "
            f"{kept if kept.is_file() else 'nothing'} holds the last checkpoint saved",
            file=sys.stderr,
        )
        return 2
    except BrokenPipeError:  # the reader of the log went away: the command ends quietly
        raise
    except OSError as error:  # a save that failed midway: the last checkpoint is intact
        kept = checkpoint_path(config.out_dir)
        print(
            f"error: cannot save the checkpoint in {config.out_dir} ({error.strerror or error}); "
            f"{kept if kept.is_file() else 'nothing'} holds the last one saved",
            file=sys.stderr,
        )
        return 2
    except TrainingInterrupted as stop:
        return 128 + stop.signum  # train() has printed where it saved; 130 after Ctrl-C
    except KeyboardInterrupt:
        kept = checkpoint_path(config.out_dir)
        kept_note = f"{kept} holds the last checkpoint" if kept.exists() else "nothing was saved"
        print(f"interrupted before a checkpoint could be saved; {kept_note}", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
