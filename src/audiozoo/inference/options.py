"""Command-line flags of the dataset-scale commands (`embed`, `predict`, `pseudo-label`) and the keyword arguments of
`audiozoo.inference.runner.run_inference` they become. Torch-free: the command line parses its arguments before any
model code is imported."""

from __future__ import annotations

import argparse

from ..runtime import DTYPE_NAMES, LOW_PRECISION_TOLERANCE

TASKS = ("embed", "predict", "pseudo-label")
ON_ERROR = ("stop", "skip")


def _add_run_arguments(parser: argparse.ArgumentParser, *, data_required: bool = True) -> None:
    """What every dataset-scale command takes: the data, the output, batching, sharding, resume, bad rows.

    `data_required=False` for `embed`, whose list-of-files form (`audiozoo embed FILE... --output X.npy`) shares the
    parser; there `--on_error` defaults to None and the command line picks each form's default."""
    parser.add_argument("--data", required=data_required,
                        help="CSV/TSV manifest (a file column: file, path, filename or audio; labels not needed), a "
                             "folder of audio files (searched recursively) or a datasets folder (save_to_disk; the "
                             "audio column is read undecoded)")
    parser.add_argument("--output", required=True,
                        help="X.h5: one HDF5 file, merged from the shards at the end; any other path: a folder that "
                             "keeps the shards (shard-00000.h5, ...) with an index.json")
    parser.add_argument("--batch_size", type=int, default=None,
                        help="clips per forward pass (windows for 10 s models); default: per model family and device "
                             "(audiozoo.runtime.default_batch_size: small on the CPU, where convolutional models run "
                             "one clip at a time, 32 on a GPU)")
    parser.add_argument("--num_workers", type=int, default=2, help="DataLoader processes that decode audio")
    parser.add_argument("--shard_size", type=int, default=1000,
                        help="clips per shard: the unit written to disk, split between processes and resumed")
    parser.add_argument("--max_padding", type=float, default=0.0,
                        help="how much a clip may be zero-padded to share a batch with longer ones, as a fraction of "
                             "its length. 0 (default): only clips of equal length share a batch, so every output "
                             "equals that of the clip alone; more is faster on data of mixed lengths, and outputs "
                             "then follow the model's padding rules. Windowed models (10 s windows) ignore it")
    parser.add_argument("--resume", action="store_true",
                        help="continue a killed run: finished shards are kept, the settings must match")
    parser.add_argument("--on_error", choices=ON_ERROR, default="stop" if data_required else None,
                        help="a row whose audio cannot be read: stop before the run starts, naming every such row "
                             "(default), or skip it and list it in OUTPUT.errors.tsv")
    parser.add_argument("--audio_column", default="audio", help="audio column of a datasets folder")
    parser.add_argument("--device", default=None,
                        help="cpu, cuda, cuda:N or mps; default: this process's device (one GPU per process under "
                             "accelerate launch, else CPU). A device this machine lacks is an error, never the CPU")
    add_runtime_arguments(parser)


def add_runtime_arguments(parser: argparse.ArgumentParser) -> None:
    """--dtype and --compile, for every command that runs a model (classify, detect, embed, predict,
    pseudo-label); see audiozoo.runtime."""
    parser.add_argument("--dtype", choices=DTYPE_NAMES, default="float32",
                        help="compute dtype of the model: float32 (default, as the originals), or bfloat16 / float16 "
                             "under torch.autocast (weights and front end stay float32; outputs differ from float32 by "
                             f"up to {LOW_PRECISION_TOLERANCE['bfloat16'] * 100:g}%% (bfloat16) / "
                             f"{LOW_PRECISION_TOLERANCE['float16'] * 100:g}%% (float16) of the largest output, "
                             "frame-MobileNet more)")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the encoder: the first batch (and each new input shape) waits tens of "
                             "seconds for the compiler; where compiling fails, a warning and the eager model")


def add_embed_file_arguments(parser: argparse.ArgumentParser) -> None:
    """`audiozoo embed FILE... --model ... --output X.npy|X.safetensors`: the list-of-files form, one process, beside
    the dataset form (`--data`) on the same command."""
    parser.add_argument("files", nargs="*", help="audio files (the list form, written to --output X.npy or "
                        "X.safetensors; or --data for a whole data set)")
    parser.add_argument("--allow_truncated", action="store_true",
                        help="list form: decode files whose data ends before their header says (instead of refusing)")
    add_embed_arguments(parser, data_required=False)


def add_embed_arguments(parser: argparse.ArgumentParser, *, data_required: bool = True) -> None:
    """`audiozoo embed --data ... --model ... --output X.h5 [--level clip|frame] [--layer N]`."""
    parser.add_argument("--model", required=True, help="converted model folder or Hub id (its encoder is used)")
    parser.add_argument("--level", choices=("clip", "frame"), default="clip",
                        help="clip: one vector per clip (the model's pooled output, else the mean of its valid "
                             "time steps); frame: one vector per time step (frame rate stored with the output)")
    parser.add_argument("--layer", type=int, default=None,
                        help="use hidden state N (0: the embeddings; the last one equals the default) instead of the "
                             "final output")
    _add_run_arguments(parser, data_required=data_required)


def add_predict_arguments(parser: argparse.ArgumentParser) -> None:
    """`audiozoo predict --data ... --model ... --output X.h5 [--level clip|frame]`."""
    parser.add_argument("--model", required=True, help="converted classifier folder or Hub id")
    parser.add_argument("--level", choices=("clip", "frame"), default="clip",
                        help="clip: class probabilities per clip (a clip classifier); frame: per-frame probabilities "
                             "(a frame classifier; PretrainedSED models run on 10 s windows as their pipeline)")
    _add_run_arguments(parser)


def add_pseudo_label_arguments(parser: argparse.ArgumentParser) -> None:
    """`audiozoo pseudo-label --data ... --teachers DIR [DIR ...] --output X.h5`."""
    parser.add_argument("--teachers", nargs="+", required=True,
                        help="PretrainedSED frame classifiers (same classes, same frame rate): their strong logits on "
                             "10 s windows are averaged and stored as float16 [clips, classes, frames], the layout "
                             "`audiozoo distill --pseudo_labels` reads")
    _add_run_arguments(parser)


def inference_options(task: str, args: argparse.Namespace) -> dict:
    """Parsed flags -> keyword arguments of `run_inference(task, data, output, **options)` (data and output
    included)."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    options = {name: getattr(args, name) for name in ("data", "output", "batch_size", "num_workers", "shard_size",
                                                       "max_padding", "resume", "on_error", "audio_column", "device",
                                                       "dtype", "compile")}
    if task == "pseudo-label":
        options["teachers"] = tuple(args.teachers)
    else:
        options["model"] = args.model
        options["level"] = args.level
    if task == "embed":
        options["layer"] = args.layer
    return options


__all__ = ["ON_ERROR", "TASKS", "add_embed_arguments", "add_embed_file_arguments", "add_predict_arguments",
           "add_pseudo_label_arguments", "add_runtime_arguments", "inference_options"]
