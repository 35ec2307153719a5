"""`audiozoo` command line: classify, detect, embed, probe, train, convert and push.

    audiozoo classify FILE... --model DIR_OR_HUB_ID [--top-k K]
    audiozoo detect FILE... --model DIR_OR_HUB_ID [--threshold T...] [--median-window N] [--tsv X.tsv] [--plot X.png]
    audiozoo embed FILE... --model DIR_OR_HUB_ID --output X.npy|X.safetensors [--level clip|frame]
    audiozoo probe --model DIR_OR_HUB_ID --data MANIFEST.csv
    audiozoo finetune --data MANIFEST.csv --model DIR | --config CONFIG.json --output_dir OUT [...]
    audiozoo pretrain {eat,byol_a,beats,beats_tokenizer} --data DIR_OR_MANIFEST (--config CONFIG.json | --model DIR) --output_dir OUT
    audiozoo distill --data MANIFEST.csv --events EVENTS.tsv --model DIR --pseudo_labels X.h5 | --teachers DIR... --output_dir OUT
    audiozoo convert beats --checkpoint_path ORIG.pt --pytorch_dump_folder_path OUT [--push_to_hub REPO]
    audiozoo convert ast --checkpoint_path audioset_10_10_0.4593.pth --pytorch_dump_folder_path OUT [--dataset ...]
    audiozoo convert eat --checkpoint_path CHECKPOINT.pt --pytorch_dump_folder_path OUT
    audiozoo convert byol_a --checkpoint_path AudioNTT2020-BYOLA-64x96d2048.pth --pytorch_dump_folder_path OUT
    audiozoo convert pretrained_sed --checkpoint_path ATST-F_strong_1.pt --model_name ATST-F --pytorch_dump_folder_path OUT
    audiozoo push FOLDER REPO_ID [--private] [--commit_message MSG]

Order of work: parse and check the arguments, the `--model` path and every input file (torch-free: no model code is
imported yet, see audiozoo_cli.py), then import the model code, check the device, read the model's config (labels),
load the model and process the files. A problem is one line on stderr, `audiozoo: error: ...`; wrong arguments exit
with status 2 (argparse's), failed inputs and models that do not load with status 1; `--debug` shows the traceback.
Commands over several files process every good file and report every bad one (`--on_error skip`, the default), or
end at the first bad one (`--on_error stop`, which ends before the model loads if a file fails the first check).
The commands that run a model (classify, detect, embed, predict, pseudo-label) take `--device` (a device this
machine lacks is a usage error, never the CPU instead), `--dtype float32|bfloat16|float16` (autocast) and
`--compile` (torch.compile of the encoder); see audiozoo.runtime.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import importlib.util
import json
import os
import re
import sys
import warnings
from pathlib import Path

from .conversion.arguments import CONVERSION_COMMANDS, conversion_options
from .families import CONVERSIONS
from .inference.options import (
    add_embed_file_arguments,
    add_predict_arguments,
    add_pseudo_label_arguments,
    add_runtime_arguments,
    inference_options,
)
from .runtime import CompileFallbackWarning, LowPrecisionWarning
from .training.options import (
    PRETRAIN_RECIPES,
    FinetuneArgs,
    add_distill_arguments,
    add_finetune_arguments,
)

PROG = "audiozoo"
PACKAGE_DIR = Path(__file__).resolve().parent
DEBUG_HINT = "run with --debug for the traceback"


class CommandError(Exception):
    """A failure the user can act on (a bad input, a model that does not load): one line, exit status 1."""


class UsageError(CommandError):
    """A wrong argument that only shows once the model or the machine is known (an unknown class name in
    --threshold, --device cuda without CUDA): one line, exit status 2 as for argparse's own errors."""


def _error(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr)


def _raised_by_audiozoo(error: BaseException) -> bool:
    """Whether the innermost frame of the error's traceback is in this package (whose messages are written for the
    command line) rather than in transformers, the Hub client or Python itself."""
    trace = error.__traceback__
    while trace is not None and trace.tb_next is not None:
        trace = trace.tb_next
    return trace is not None and Path(trace.tb_frame.f_code.co_filename).resolve().is_relative_to(PACKAGE_DIR)


def _one_line(error: BaseException) -> str:
    """The message of an exception for the command line: the package's own messages whole (a list of problems is
    one line per problem), others by their first non-empty line (transformers' and the Hub's run over many), with
    the exception type where the message alone would not say what happened."""
    lines = [line.rstrip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    known = isinstance(error, (CommandError, ValueError, OSError, ImportError))
    if known and _raised_by_audiozoo(error):
        return "\n".join(lines)
    text = lines[0].strip()
    return text if known else f"{type(error).__name__}: {text}"


# --------------------------------------------------------------------------------------------------------------
# argument types (argparse turns their errors into a usage message naming the flag, exit status 2)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a probability in [0, 1], got {text!r}") from None
    if not 0.0 <= value <= 1.0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"expected a probability in [0, 1], got {text!r}")
    return value


def _per_class(cast, what: str):
    """An argument type for VALUE or LABEL=VALUE: returns the value, or (label, value)."""

    def parse(text: str):
        label, separator, number = text.rpartition("=")
        try:
            value = cast(number)
        except argparse.ArgumentTypeError as error:
            where = f" in {text!r}" if separator else ""
            raise argparse.ArgumentTypeError(f"{error}{where}; expected {what} or LABEL={what}") from None
        if separator:
            if not label.strip():
                raise argparse.ArgumentTypeError(f"no class name before '=' in {text!r}")
            return label, value
        return value

    return parse


DEVICE_PATTERN = re.compile(r"cpu|cuda(:\d+)?|mps")


def _device(text: str) -> str:
    if not DEVICE_PATTERN.fullmatch(text):
        raise argparse.ArgumentTypeError(f"unknown device {text!r}; use cpu, cuda, cuda:N or mps")
    return text


def _embedding_output(text: str) -> str:
    if Path(text).suffix not in (".npy", ".safetensors"):
        raise argparse.ArgumentTypeError(f"must end in .npy or .safetensors, got {Path(text).name!r}")
    return text


# --------------------------------------------------------------------------------------------------------------
# checks before any model code is imported


HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")


def _looks_local(name: str) -> bool:
    """Whether `name` can only mean a local path: it starts with '.', '/' or '~', has more than one separator, or
    its first component is a local folder (a Hub id is `org/name`)."""
    separators = [os.sep] + ([os.altsep] if os.altsep else [])
    if name.startswith((".", "~", *separators)) or sum(name.count(sep) for sep in separators) > 1:
        return True
    first = re.split("|".join(re.escape(sep) for sep in separators), name)[0]
    return "/" in name and Path(first).is_dir()


def _folder_listing(folder: Path, wanted: str = "", limit: int = 8) -> str:
    """A few entries of `folder` (those most like `wanted` first) for an error message."""
    try:
        names = sorted(entry.name + ("/" if entry.is_dir() else "") for entry in folder.iterdir()
                       if not entry.name.startswith("."))
    except OSError as error:
        return f"cannot be listed ({error.strerror or error})"
    if not names:
        return "is empty"
    close = difflib.get_close_matches(wanted, names, n=limit, cutoff=0.5) if wanted else []
    shown = close + [name for name in names if name not in close]
    more = f", ... ({len(names) - limit} more)" if len(names) > limit else ""
    return "contains: " + ", ".join(shown[:limit]) + more


def check_model_argument(name: str, flag: str = "--model") -> str:
    """Check a `--model` value without touching the network: a folder must hold config.json; a path that does not
    exist is an error at once (never a Hub request); what remains must look like a Hub id. Returns the value to
    load (a local folder, `~` expanded, or the Hub id)."""
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise CommandError(f"{flag} {name}: the folder has no config.json, so it is not a converted model folder "
                               f"(it {_folder_listing(path, 'config.json')})")
        return str(path)
    if path.exists():
        raise CommandError(f"{flag} {name} is a file; pass the model folder (with config.json) or a Hub id")
    if _looks_local(name) or not HUB_ID.fullmatch(name):
        missing = path
        while not missing.parent.is_dir() and missing.parent != missing.parent.parent:
            missing = missing.parent
        gap = f" (there is no {missing})" if missing != path else ""
        where = "the current folder" if str(missing.parent) == "." else str(missing.parent)
        hub = "" if _looks_local(name) else "; a Hub id is ORG/NAME"
        raise CommandError(f"no model folder {name}{gap}; {where} {_folder_listing(missing.parent, missing.name)}{hub}")
    return name


def _check_existing_paths(args: argparse.Namespace, flags: tuple[str, ...]) -> None:
    """Input paths of the training and conversion commands must exist before any work starts."""
    for flag in flags:
        value = getattr(args, flag, None)
        if value is not None and not Path(value).expanduser().exists():
            raise CommandError(f"--{flag} {value}: no such file or folder")


class FileRun:
    """The files of classify / detect / embed: checked before the model loads, then processed one by one; a bad
    file is reported and skipped (`--on_error skip`) or ends the run (`--on_error stop`)."""

    def __init__(self, args: argparse.Namespace):
        self.files = [str(path) for path in args.files]
        self.stop_at_first = args.on_error == "stop"
        self.debug = args.debug
        self.allow_truncated = args.allow_truncated
        self.errors: dict[str, str] = {}
        self.stopped = False

    def fail(self, path: str, error: BaseException) -> None:
        if self.debug:
            raise error
        message = _one_line(error)
        if path not in message:
            message = f"{path}: {message}"
        if not isinstance(error, (ValueError, OSError)):
            message += f" ({DEBUG_HINT})"
        self.errors.setdefault(path, message)
        _error(message)
        self.stopped = self.stopped or self.stop_at_first

    def check(self) -> list[str]:
        """Check every file without decoding it (it exists, libsndfile reads its header, it is not empty nor, unless
        --allow_truncated, truncated); returns the good ones, in order."""
        from .audio.io import check_audio_file

        good = []
        for path in self.files:
            try:
                check_audio_file(path, allow_truncated=self.allow_truncated)
            except (OSError, ValueError) as error:
                self.fail(path, error)
                if self.stopped:
                    return []
            else:
                good.append(path)
        return good

    def each(self, files: list[str], process) -> list[tuple[str, object]]:
        """(path, process(path)) for every file that does not fail."""
        results = []
        for path in files:
            if self.stopped:
                break
            try:
                results.append((path, process(path)))
            except Exception as error:  # noqa: BLE001 - one bad file must not end the run (--on_error skip)
                self.fail(path, error)
        return results

    def exit_status(self) -> int:
        if not self.errors:
            return 0
        if len(self.files) > 1:
            unprocessed = "" if not self.stopped else "; stopped there (--on_error stop)"
            _error(f"{len(self.errors)} of {len(self.files)} files failed{unprocessed}")
        return 1

    def finish(self, as_json: bool = False, results: dict | None = None) -> int:
        """With `as_json`, print the results of the good files, keyed by file, and `errors` (file -> message) for
        the bad ones; returns the exit status."""
        if as_json:
            results = results or {}
            print(json.dumps({**results, "errors": self.errors} if self.errors else results, indent=2))
        return self.exit_status()


# --------------------------------------------------------------------------------------------------------------
# model code (imported only once the arguments and inputs are known to be right)


def _load_library(args: argparse.Namespace) -> None:
    """Import and register the model code; keep transformers' progress bars and load reports out of the output
    (they come back with --verbose)."""
    import audiozoo

    audiozoo.load()  # registers the models and pipelines (deferred by the console entry point)
    if args.verbose:
        return
    from huggingface_hub.utils import (
        are_progress_bars_disabled,
        disable_progress_bars,
        enable_progress_bars,
    )
    from transformers.utils import logging as transformers_logging

    verbosity, bars = transformers_logging.get_verbosity(), transformers_logging.is_progress_bar_enabled()
    hub_bars = not are_progress_bars_disabled()
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    disable_progress_bars()

    def restore() -> None:  # main() may run again in this process (tests, notebooks)
        transformers_logging.set_verbosity(verbosity)
        if bars:
            transformers_logging.enable_progress_bar()
        if hub_bars:
            enable_progress_bars()

    args.restore_logging = restore


def check_device(device: str) -> None:
    """A device this machine has, or a usage error (never a silent fall-back to the CPU): `runtime.check_device`,
    its message naming the flag."""
    from .runtime import DeviceUnavailableError
    from .runtime import check_device as check

    try:
        check(device, flag="--device")
    except DeviceUnavailableError as error:
        raise UsageError(str(error)) from None


def prepare_model(args: argparse.Namespace, model_of) -> None:
    """--dtype and --compile for a loaded model (`model_of()`, asked for only when one of them is given): a warning
    where the family strays far from float32 at this dtype, torch.compile of its encoder (eager, with a warning,
    where compiling fails)."""
    from .runtime import compile_model, warn_low_precision

    if args.dtype != "float32":
        warn_low_precision(model_of().config.model_type, args.dtype)
    if args.compile:
        compile_model(model_of())


def load_model(name: str, loader):
    """`loader(name)`, with a failure as one line: a local folder that does not load, or a Hub id that is not
    reachable (unknown, private, or no network)."""
    try:
        return loader(name)
    except Exception as error:
        if Path(name).is_dir():
            raise CommandError(f"could not load the model in {name}: {_one_line(error)}") from error
        raise CommandError(f"--model {name} is neither a local folder nor reachable on the Hugging Face Hub "
                           f"({_one_line(error)})") from error


def _check_not_mixed(values, flag: str) -> None:
    if values and len({isinstance(value, tuple) for value in values}) > 1:
        raise UsageError(f"{flag}: mix of plain and LABEL=VALUE entries; use LABEL=VALUE for every entry")


def _labels(config) -> list[str]:
    return [config.id2label[index] for index in range(len(config.id2label))]


def _per_class_option(values, labels: list[str], default, flag: str):
    """--threshold / --median-window values -> one value, several values, or one value per class (LABEL=VALUE
    entries, the other classes at `default`); an unknown class name is a usage error with close names."""
    if not values:
        return default
    named = [value for value in values if isinstance(value, tuple)]  # all or none (`_check_not_mixed`)
    if not named:
        return values[0] if len(values) == 1 else list(values)
    known = set(labels)
    for label, _ in named:
        if label not in known:
            close = difflib.get_close_matches(label, labels, n=3, cutoff=0.5)
            hint = f"did you mean {', '.join(map(repr, close))}?" if close else f"the classes are e.g. {labels[:5]}"
            raise UsageError(f"{flag}: the model has no class {label!r}; {hint} ({len(labels)} classes)")
    given = dict(named)
    return [given.get(label, default) for label in labels]


# --------------------------------------------------------------------------------------------------------------
# commands


def classify(args: argparse.Namespace) -> int:
    """Print the top labels of each file (one clip at a time, so results never depend on batch padding)."""
    run = FileRun(args)
    if args.model is None:
        from .default_model import default_model_path

        args.model = str(default_model_path())
    model = check_model_argument(args.model)
    files = run.check()
    if not files:
        return run.finish(args.json)
    _load_library(args)
    check_device(args.device)
    import torch
    from transformers import pipeline

    classifier = load_model(model, lambda name: pipeline("audio-classification", model=name, device=args.device,
                                                         dtype=torch.float32))
    prepare_model(args, lambda: classifier.model)

    def process(path: str):
        scores = classifier(path, top_k=args.top_k, allow_truncated=args.allow_truncated, autocast_dtype=args.dtype)
        if not args.json:
            print(path)
            for entry in scores:
                print(f"  {entry['score']:.4f}  {entry['label']}")
        return scores

    return run.finish(args.json, dict(run.each(files, process)))


# flags of the dataset form (`--data`) that the list-of-files form of `embed` does not take
DATASET_ONLY_FLAGS = ("layer", "batch_size", "num_workers", "shard_size", "max_padding", "resume", "audio_column")


def embed(args: argparse.Namespace) -> int:
    """`embed --data SOURCE`: the dataset runner (see run_dataset_command). `embed FILE...`: clip embeddings [N, C]
    (the model's pooled output, else the mean of its valid tokens) or per-file frame embeddings [T, C] (the model's
    per-time-step features) of the files that do not fail, in one .npy or .safetensors file."""
    if args.data is not None:
        if args.files:
            raise UsageError("give audio files or --data, not both")
        if args.allow_truncated:
            raise UsageError("--allow_truncated applies to the list of files; --data runs refuse truncated files")
        return run_dataset_command(args)
    if not args.files:
        raise UsageError("give audio files, or --data MANIFEST|FOLDER for a whole data set")
    given = [f"--{name}" for name in DATASET_ONLY_FLAGS
             if getattr(args, name) != args.command_parser.get_default(name)]
    if given:
        raise UsageError(f"{', '.join(given)} apply to --data runs only")
    for name, check in (("output", _embedding_output), ("device", _device)):
        try:
            setattr(args, name, check(getattr(args, name) or "cpu"))
        except argparse.ArgumentTypeError as error:
            raise UsageError(f"--{name}: {error}") from None
    args.on_error = args.on_error or "skip"
    run = FileRun(args)
    model_name = check_model_argument(args.model)
    files = run.check()
    if not files:
        return run.exit_status()
    _load_library(args)
    check_device(args.device)
    import numpy as np

    from .inference.embeddings import embed_audio, load_encoder

    feature_extractor, model = load_model(model_name, lambda name: load_encoder(name, args.device))
    prepare_model(args, lambda: model)
    embedded = run.each(files, lambda path: embed_audio(feature_extractor, model, path, args.level, args.device,
                                                        allow_truncated=args.allow_truncated, dtype=args.dtype))
    if not embedded:
        return run.exit_status()
    names = [path for path, _ in embedded]
    embeddings = [vectors for _, vectors in embedded]
    output = Path(args.output)
    if output.suffix == ".safetensors":
        from safetensors.numpy import save_file

        if args.level == "clip":
            tensors = {"embeddings": np.stack(embeddings)}
        else:
            tensors = {f"frames_{index}": frames for index, frames in enumerate(embeddings)}
        metadata = {"files": json.dumps(names), "level": args.level, "model": str(args.model)}
        if args.level == "frame":
            metadata["frame_rate"] = str(model.config.frame_rate)
        save_file(tensors, str(output), metadata=metadata)
    else:
        shapes = {item.shape for item in embeddings}
        if len(shapes) != 1:
            raise CommandError(f"frame embeddings of different lengths {sorted(shapes)} cannot go in one .npy; "
                               "use .safetensors")
        np.save(output, np.stack(embeddings))
    skipped = f" (without the {len(run.errors)} failed files)" if run.errors else ""
    print(f"wrote {len(embeddings)} {args.level} embeddings of shape {embeddings[0].shape} to {output}{skipped}")
    return run.exit_status()


def run_dataset_command(args: argparse.Namespace) -> int:
    """`embed --data`, `predict` and `pseudo-label`: the sharded, resumable dataset runner (audiozoo.inference).
    Models and the data are checked before torch loads; rows that cannot be read stop the run before it starts, or
    with `--on_error skip` are listed in OUTPUT.errors.tsv (and the exit status is 1)."""
    task = args.command
    if args.device is not None:
        try:
            _device(args.device)
        except argparse.ArgumentTypeError as error:
            raise UsageError(f"--device: {error}") from None
    names = args.teachers if task == "pseudo-label" else [args.model]
    flag = "--teachers" if task == "pseudo-label" else "--model"
    checked = [check_model_argument(name, flag) for name in names]
    if task == "pseudo-label":
        args.teachers = checked
    else:
        args.model = checked[0]
    if not Path(args.data).expanduser().exists():
        raise CommandError(f"--data {args.data}: no such manifest or folder")
    args.on_error = args.on_error or "stop"
    _load_library(args)
    if args.device is not None:
        check_device(args.device)
    from .inference.runner import run_inference

    output = run_inference(task, **inference_options(task, args))
    errors = Path(f"{output}.errors.tsv")
    skipped = max(0, len(errors.read_text(encoding="utf-8").splitlines()) - 1) if errors.is_file() else 0
    print(f"wrote {output}" + (f"; {skipped} rows skipped, listed in {errors}" if skipped else ""))
    return 1 if skipped else 0


def detect(args: argparse.Namespace) -> int:
    """Print the sound events of each file; optionally write a DESED-style TSV and an event-roll plot."""
    if args.plot and len(args.files) != 1:
        raise UsageError(f"--plot draws one file; got {len(args.files)}")
    if args.plot and importlib.util.find_spec("matplotlib") is None:
        raise CommandError('--plot needs matplotlib, which is not part of the base install: '
                           'pip install "audiozoo[plot]"')
    _check_not_mixed(args.threshold, "--threshold")
    _check_not_mixed(args.median_window, "--median-window")
    run = FileRun(args)
    model = check_model_argument(args.model)
    files = run.check()
    if not files:
        return run.finish(args.json)
    _load_library(args)
    check_device(args.device)
    import torch
    from transformers import AutoConfig, pipeline

    from .audio.io import check_audio_file
    from .sed.postprocessing import EventsTsvWriter

    labels = _labels(load_model(model, AutoConfig.from_pretrained))
    threshold = _per_class_option(args.threshold, labels, 0.5, "--threshold")
    several = isinstance(threshold, list) and len(threshold) != len(labels)
    options = {"thresholds": threshold} if several else {"threshold": threshold}
    median_window = _per_class_option(args.median_window, labels, 9, "--median-window")
    if isinstance(median_window, list) and len(median_window) != len(labels):
        raise UsageError(f"--median-window takes one value, LABEL=N entries or one value per class "
                         f"({len(labels)}); got {len(median_window)} values")
    if several and (args.tsv or args.plot):
        raise UsageError("--tsv and --plot take one threshold (or one per class), not several")
    options["allow_truncated"] = args.allow_truncated

    detector = load_model(model, lambda name: pipeline("sound-event-detection", model=name, device=args.device,
                                                       dtype=torch.float32))
    prepare_model(args, lambda: detector.model)

    # Files are read, run and post-processed in 10 s windows (memory does not grow with their length); events are
    # printed and TSV rows written as soon as they are final, the spectrogram of --plot is drawn from the same pass.
    rate = detector.feature_extractor.sampling_rate
    tsv = EventsTsvWriter(args.tsv) if args.tsv else None
    spectrograms = {}

    def show(event: dict) -> None:
        print(f"  {event['onset']:8.2f} {event['offset']:8.2f}  {event['score']:.3f}  {event['label']}")

    def process(path: str):
        printed = []  # a file's name comes with its first event (a file that fails at once prints nothing)

        def on_event(event: dict) -> None:
            if tsv is not None:
                tsv.add(event)
            if not args.json:
                if not printed:
                    print(path)
                    printed.append(path)
                show(event)

        spectrogram = None
        if args.plot:
            from .sed.plot import SpectrogramImage

            info = check_audio_file(path, allow_truncated=args.allow_truncated)
            spectrogram = SpectrogramImage(rate, expected_samples=info.frames * rate // info.sampling_rate)
        if tsv is not None:
            tsv.start_file(Path(path).name)
        try:
            events = detector(path, median_window=median_window, chunk_batch_size=args.chunk_batch_size,
                              autocast_dtype=args.dtype, on_event=None if several else on_event,
                              on_audio=None if spectrogram is None else spectrogram.push, **options)
        except Exception:
            if tsv is not None:
                tsv.discard_file()  # a file that failed part-way (NaN samples, damaged data) leaves no rows
            raise
        if spectrogram is not None:
            spectrograms[path] = spectrogram
        if not args.json:
            if isinstance(events, dict):  # several thresholds: grouped, once the file is done
                print(path)
                for value, group in events.items():
                    print(f"  threshold {value:g}:")
                    for event in group:
                        show(event)
                    if not group:
                        print("  (no events above the threshold)")
            elif not events:
                print(path)
                print("  (no events above the threshold)")
        return events

    results = {}
    try:
        results = dict(run.each(files, process))
    finally:
        if tsv is not None:
            tsv.close(keep=bool(results) or tsv.rows > 0)  # no file detected: no TSV (as before)
    notices = sys.stderr if args.json else sys.stdout  # with --json, stdout holds only the JSON
    if tsv is not None and results:
        print(f"wrote {tsv.rows} events to {args.tsv}", file=notices)
    if args.plot and results:
        from .sed.plot import plot_events

        path = files[0]
        plot_events(spectrograms[path], rate, results[path], args.plot, title=Path(path).name)
        print(f"wrote {args.plot}", file=notices)
    return run.finish(args.json, results)


def finetune(args: argparse.Namespace) -> int:
    """Supervised training of any model of the package (see audiozoo.training.finetune)."""
    _check_training_inputs(args)
    _load_library(args)
    from .training.finetune import run_finetune

    values = {key: value for key, value in vars(args).items() if key in FinetuneArgs.__dataclass_fields__}
    result = run_finetune(FinetuneArgs(**values))
    if result.test:
        print("test " + ", ".join(f"{key} {value:.4f}" for key, value in result.test.items()))
    print(f"best epoch {result.best_epoch} ({result.metric} {result.best_metric}); model in {result.output_dir}; "
          f"{result.seconds:.1f} s")
    return 0


def distill(args: argparse.Namespace) -> int:
    """Knowledge distillation of a frame classifier (see audiozoo.training.distill)."""
    _check_training_inputs(args)
    _load_library(args)
    from .training.distill import main

    return main(args)


def pretrain(args: argparse.Namespace) -> int:
    """Self-supervised pre-training: the recipe's loop module runs (imported only now)."""
    _check_training_inputs(args)
    _load_library(args)
    module = importlib.import_module(f".training.{args.recipe_module}", __package__)
    return getattr(module, args.recipe_main)(args)


def _check_training_inputs(args: argparse.Namespace) -> None:
    _check_existing_paths(args, ("data", "config", "events", "labels", "pseudo_labels"))
    for flag in ("model", "teacher"):
        if getattr(args, flag, None) is not None:
            setattr(args, flag, check_model_argument(getattr(args, flag), f"--{flag}"))
    for index, teacher in enumerate(getattr(args, "teachers", None) or ()):
        args.teachers[index] = check_model_argument(teacher, "--teachers")


def probe(args: argparse.Namespace) -> int:
    """Linear evaluation of a frozen encoder on a labelled manifest; prints the accuracies."""
    model = check_model_argument(args.model)
    _check_existing_paths(args, ("data",))
    _load_library(args)
    check_device(args.device)
    from .training.probe import run_probe

    result = run_probe(model, args.data, args.device, args.seed)
    print(f"splits: {result.sizes}; classes: {len(result.labels)}; probe trained {result.epochs} epochs")
    print(f"test accuracy {result.test_accuracy:.4f} (valid {result.valid_accuracy:.4f}; "
          f"chance = majority class {result.chance_accuracy:.4f})")
    if args.output:
        Path(args.output).write_text(json.dumps(vars(result), indent=2))
    return 0


def convert(args: argparse.Namespace) -> int:
    """Convert an original checkpoint with the family's conversion module (`audiozoo.conversion.<family>`)."""
    checkpoint = Path(args.checkpoint_path).expanduser()
    if not checkpoint.exists():
        raise CommandError(f"--checkpoint_path {args.checkpoint_path}: no such file")
    if checkpoint.is_dir():
        raise CommandError(f"--checkpoint_path {args.checkpoint_path} is a folder; pass the original checkpoint file")
    _load_library(args)
    module = importlib.import_module(f".conversion.{args.family}", __package__)
    options = conversion_options(args.family, args)
    out = module.convert_and_save(args.checkpoint_path, args.pytorch_dump_folder_path, **options)
    print(f"converted {args.checkpoint_path} -> {out}")
    return 0


def push(args: argparse.Namespace) -> int:
    """Upload a converted or trained model folder to the Hub (torch-free: no model code is imported)."""
    from .hub.push import check_model_folder, push_model_folder

    check_model_folder(args.folder)  # what the folder lacks, before any request
    try:
        uploaded = push_model_folder(args.folder, args.repo_id, private=args.private, own_weights=args.own_weights,
                                     commit_message=args.commit_message)
    except Exception as error:
        raise CommandError(f"could not push {args.folder} to {args.repo_id}: {_one_line(error)}") from error
    print(f"uploaded {len(uploaded)} files to https://huggingface.co/{args.repo_id}:")
    for name in uploaded:
        print(f"  {name}")
    return 0


# --------------------------------------------------------------------------------------------------------------
# the parser


def _add_global_flags(parser: argparse.ArgumentParser, top: bool = False) -> None:
    """--debug and --verbose, before the command (shown in the top-level help) or after it (hidden there, so each
    command's --help stays about the command; `default=SUPPRESS` keeps a sub-command from resetting them)."""
    if top:
        parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
        parser.add_argument("--verbose", action="store_true",
                            help="show transformers' warnings, load reports and progress bars")
    else:
        parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        parser.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def _add_inference_arguments(parser: argparse.ArgumentParser, model_required: bool = True) -> None:
    parser.add_argument("files", nargs="+", help="audio files (wav, flac, ogg, mp3); any rate, any channels")
    parser.add_argument("--model", required=model_required, default=None,
                        help="converted model folder or Hugging Face Hub id"
                        + ("" if model_required else " (default: the bundled drum-hit classifier)"))
    parser.add_argument("--device", type=_device, default="cpu", help="torch device: cpu, cuda, cuda:N or mps")
    parser.add_argument("--on_error", choices=("skip", "stop"), default="skip",
                        help="a file that fails: report it and go on with the others (skip, the default; the exit "
                        "status is 1 at the end) or end the run there (stop)")
    parser.add_argument("--allow_truncated", action="store_true",
                        help="decode files whose data ends before their header says (instead of refusing them)")
    add_runtime_arguments(parser)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    _add_global_flags(parser, top=True)
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, handler, **kwargs) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, **kwargs)
        sub.set_defaults(handler=handler, command_parser=sub)
        return sub

    classify_parser = command("classify", classify, help="print the top labels of audio files")
    _add_inference_arguments(classify_parser, model_required=False)
    classify_parser.add_argument("--top-k", type=_positive_int, default=5, help="labels per file")
    classify_parser.add_argument("--json", action="store_true", help="print JSON instead of text")

    embed_parser = command("embed", embed, help="write clip or frame embeddings of audio files or a whole data set")
    add_embed_file_arguments(embed_parser)
    predict_parser = command("predict", run_dataset_command,
                             help="class probabilities (clip or frame) of a whole data set, sharded and resumable")
    add_predict_arguments(predict_parser)
    pseudo_label_parser = command("pseudo-label", run_dataset_command,
                                  help="PretrainedSED teacher-ensemble strong logits for `audiozoo distill`")
    add_pseudo_label_arguments(pseudo_label_parser)

    detect_parser = command("detect", detect, help="sound-event detection: events with onsets and offsets")
    _add_inference_arguments(detect_parser)
    detect_parser.add_argument("--threshold", nargs="+", default=None, type=_per_class(_probability, "PROBABILITY"),
                               help="probability threshold (default 0.5); several values, or LABEL=VALUE per class")
    detect_parser.add_argument("--median-window", nargs="+", default=None, type=_per_class(_positive_int, "FRAMES"),
                               help="median filter in frames (default 9 = 360 ms); LABEL=FRAMES per class")
    detect_parser.add_argument("--chunk-batch-size", type=_positive_int, default=None,
                               help="10 s windows per forward pass (default: per model family and device, "
                               "audiozoo.runtime.default_batch_size)")
    detect_parser.add_argument("--tsv", default=None, help="write events as TSV (filename, onset, offset, event_label)")
    detect_parser.add_argument("--plot", default=None, help="write a spectrogram + event-roll PNG (one file)")
    detect_parser.add_argument("--json", action="store_true", help="print JSON instead of text")

    finetune_parser = command("finetune", finetune, help="train a model of the package on labelled audio")
    add_finetune_arguments(finetune_parser)

    distill_parser = command("distill", distill, help="knowledge distillation of a frame classifier (PretrainedSED)")
    add_distill_arguments(distill_parser)

    pretrain_parser = commands.add_parser("pretrain", help="self-supervised pre-training of an encoder")
    recipes = pretrain_parser.add_subparsers(dest="recipe", required=True)
    for recipe, add_arguments, module_name, main_name, text in PRETRAIN_RECIPES:
        recipe_parser = recipes.add_parser(recipe, help=text)
        add_arguments(recipe_parser)
        recipe_parser.set_defaults(handler=pretrain, command_parser=recipe_parser, recipe_module=module_name,
                                   recipe_main=main_name)

    probe_parser = command("probe", probe, help="linear evaluation of an encoder on a labelled manifest")
    probe_parser.add_argument("--model", required=True, help="converted model folder or Hub id")
    probe_parser.add_argument("--data", required=True,
                              help="CSV/TSV manifest: file,label[,split][,group] (paths relative to the manifest)")
    probe_parser.add_argument("--device", type=_device, default="cpu")
    probe_parser.add_argument("--seed", type=int, default=42)
    probe_parser.add_argument("--output", default=None, help="write the results as JSON here")

    convert_parser = commands.add_parser("convert", help="convert an original checkpoint")
    families = convert_parser.add_subparsers(dest="family", required=True)
    for family in CONVERSIONS:
        text, add_arguments = CONVERSION_COMMANDS[family]
        family_parser = families.add_parser(family, help=text)
        add_arguments(family_parser)
        family_parser.set_defaults(handler=convert, command_parser=family_parser)

    push_parser = command("push", push, help="upload a model folder to the Hugging Face Hub")
    push_parser.add_argument("folder", help="converted or trained model folder (config.json, model.safetensors, ...)")
    push_parser.add_argument("repo_id", help="Hub repository, e.g. your-name/beats-audioset (created if needed)")
    push_parser.add_argument("--private", action="store_true", help="create the repository as private")
    push_parser.add_argument("--commit_message", default=None, help="default: the hub module's message")
    push_parser.add_argument("--own_weights", action="store_true",
                             help="the weights are yours to share (trained from scratch, or with the rights holder's "
                             "permission): needed for BYOL-A, M2D and ASiT models, whose released weights may not be "
                             "redistributed")

    for sub in _leaf_parsers(parser):
        _add_global_flags(sub)
    return parser


def _leaf_parsers(parser: argparse.ArgumentParser):
    """Every parser of a command that runs (the sub-commands' sub-commands included)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                children = list(_leaf_parsers(sub))
                yield from children or [sub]


def _one_line_warnings(show):
    """The package's own warnings for the command line (a compile that fell back to eager, a family far from float32
    at --dtype) as one line, `audiozoo: warning: ...`; other warnings as Python shows them."""

    def show_warning(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, (CompileFallbackWarning, LowPrecisionWarning)):
            print(f"{PROG}: warning: {message}", file=sys.stderr)
        else:
            show(message, category, filename, lineno, file, line)

    return show_warning


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (argparse's usage errors raise SystemExit(2) as usual)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with warnings.catch_warnings():  # restores showwarning (main may run again in this process)
            warnings.showwarning = _one_line_warnings(warnings.showwarning)
            return args.handler(args)
    except KeyboardInterrupt:
        if args.debug:
            raise
        _error("interrupted")
        return 130
    except Exception as error:
        if args.debug:
            raise
        if isinstance(error, UsageError):
            _error(str(error))
            return 2
        message = _one_line(error)
        if not isinstance(error, (CommandError, ValueError, OSError, ImportError)):
            message += f" ({DEBUG_HINT})"
        _error(message)
        return 1
    finally:
        restore = getattr(args, "restore_logging", None)
        if restore is not None:
            restore()


if __name__ == "__main__":
    sys.exit(main())
