"""The dataset-scale runner behind `audiozoo embed`, `predict` and `pseudo-label`.

    run_inference("embed", "clips.csv", "embeddings.h5", model="converted/beats", level="frame")

1. The data source (a CSV/TSV manifest, a folder of audio files, a `datasets` folder) becomes a list of rows.
2. The rows are cut into shards of `shard_size` in source order; process r of W (`accelerate launch`, else one
   process) takes the shards k with k % W == r, skipping those a killed run already finished (`resume=True`).
3. Every row of a process's shards is checked before any model runs (the file's header: missing, unreadable or
   empty audio). Bad rows stop the run, all of them named (`on_error="stop"`), or are skipped and listed in
   `<output>.errors.tsv` (`on_error="skip"`); nothing is dropped without a line there.
4. DataLoader workers decode the clips (soundfile, mono, soxr to the model's rate); within a shard the clips go
   longest first, so clips of similar length share a batch (`max_padding`, see `options.py`); each finished shard is
   written at once, atomically (`shards.py`).
5. When every process is done, the main process merges the shards into one HDF5 file in source order (`.h5`
   output; the shards are then removed) or writes an index of them (folder output).

A shard's batches depend only on its rows and the settings, never on the number of processes, so a run on many
processes, a resumed run and an uninterrupted one write the same file. Shards go to a file system every process
sees (several nodes need a shared one).

Several processes: `accelerate launch --multi_gpu --num_processes N -m audiozoo.inference.runner embed ...` (one GPU
each; `--num_machines`, `--machine_rank`, `--main_process_ip` for several nodes), or `torchrun`. CPU processes form
a gloo group when given `--device cpu` (or when no GPU is present): accelerate's own `--cpu` flag starts a single
process unless it is given an MPI hostfile.

Pseudo labels of clips of different lengths: every clip gets windows x frames-per-window frames (250 per 10 s
window, the last window's padded audio included, as the released file keeps 250 frames per clip); in the [N, C, T]
array shorter clips are padded to the longest with -20.0 (a confident "absent", the value `audiozoo distill` pads
with) and `num_frames` says how many are real. Clips of at most one window, as AudioSet's, all get T = 250.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import h5py
import numpy as np
import soundfile
import torch

from ..audio.io import resample, to_mono
from ..data.sources import Example, example_file, example_name, examples_from_source, is_dataset_folder
from ..runtime import check_device, resolve_dtype
from .options import (
    ON_ERROR,
    add_embed_arguments,
    add_predict_arguments,
    add_pseudo_label_arguments,
    inference_options,
)
from .shards import (
    errors_path,
    finished_shards,
    is_merged_output,
    merge_shards,
    read_run_settings,
    remove_shards,
    settings_differences,
    shard_errors,
    shard_folder,
    shard_path,
    write_errors,
    write_index,
    write_run_settings,
    write_shard,
)
from .tasks import InferenceTask, build_task

try:  # the header check of audiozoo.audio.io (truncated files included), where this version has it
    from ..audio.io import check_audio_file
except ImportError:  # pragma: no cover
    check_audio_file = None

CHECK_FILE = "check-{:05d}.json"
SHOWN_ERRORS = 20


class RunInterrupted(RuntimeError):
    """Raised by the `stop_after_shards` test hook: the run stopped as a killed one would, shards kept."""


def decode_example(example: Example, sampling_rate: int) -> np.ndarray:
    """Mono float32 samples at `sampling_rate`: soundfile, channels averaged, soxr when the rate differs (as the
    training data loader)."""
    samples, rate = soundfile.read(example_file(example), dtype="float32", always_2d=False)
    samples = to_mono(samples) if samples.ndim == 2 else samples
    if samples.size == 0:
        raise ValueError("the audio is empty")
    if rate != sampling_rate:
        samples = resample(samples, rate, sampling_rate)
    return np.ascontiguousarray(samples, dtype=np.float32)


def check_example(example: Example) -> tuple[str | None, float]:
    """(error message or None, seconds) from the file's header, without decoding it."""
    try:
        if example.audio is None and check_audio_file is not None:
            info = check_audio_file(example.path)
            frames, rate = info.frames, info.sampling_rate
        else:
            if example.audio is None and not example.path.is_file():
                raise FileNotFoundError(f"audio file not found: {example.path}")
            info = soundfile.info(example_file(example))
            frames, rate = info.frames, info.samplerate
    except (OSError, RuntimeError, ValueError, TypeError) as error:
        return str(error) or type(error).__name__, 0.0
    if frames <= 0:
        return "the audio is empty", 0.0
    return None, frames / rate


class _ClipReader(torch.utils.data.Dataset):
    """Decodes rows in the planned order (in DataLoader workers); a row that fails yields its error message."""

    def __init__(self, examples: list[Example], order: list[int], sampling_rate: int):
        self.examples, self.order, self.sampling_rate = examples, order, sampling_rate

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, item: int):
        row = self.order[item]
        try:
            return row, decode_example(self.examples[row], self.sampling_rate), None
        except (OSError, RuntimeError, ValueError, TypeError) as error:
            return row, None, f"cannot decode the audio: {error}"


def _identity(item):
    return item


def _bad_rows_message(errors: list[tuple[int, str]], examples: list[Example], names: list[str]) -> str:
    lines = [f"  {examples[row].source}: {message}" if examples[row].source != names[row]
             else f"  {names[row]}: {message}" for row, message in errors[:SHOWN_ERRORS]]
    more = f"\n  ... and {len(errors) - SHOWN_ERRORS} more" if len(errors) > SHOWN_ERRORS else ""
    return (f"{len(errors)} row(s) cannot be read; nothing was computed. Fix or remove them, or pass "
            "--on_error skip to skip them (they are then listed in the errors file):\n" + "\n".join(lines) + more)


def _progress(total: int, description: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit="clip", disable=not enabled, dynamic_ncols=True, smoothing=0.1)


def run_inference(task: str, data: str | Path, output: str | Path, *, model: str | None = None, teachers=(),
                  level: str = "clip", layer: int | None = None, batch_size: int | None = None, num_workers: int = 2,
                  shard_size: int = 1000, max_padding: float = 0.0, resume: bool = False, on_error: str = "stop",
                  audio_column: str = "audio", device: str | None = None, dtype: str = "float32",
                  compile: bool = False, progress: bool = True, stop_after_shards: int | None = None) -> Path:
    """Run `task` ("embed", "predict" or "pseudo-label") over a data source and write `output`; returns its path.

    Args:
        data: a CSV/TSV manifest, a folder of audio files or a `datasets` folder.
        output: `X.h5` (one merged HDF5 file; see `audiozoo.inference.shards` for its datasets) or a folder (shards
            kept, with index.json).
        model: the model of embed / predict; teachers: the PretrainedSED teachers of pseudo-label.
        level: "clip" or "frame" (embed, predict); layer: hidden state N (embed).
        batch_size: clips per forward pass (windows, for windowed models); default (None): the model family's on
            this device, `audiozoo.runtime.default_batch_size`. num_workers: decoding processes.
        shard_size: clips per shard; max_padding: see `options.py` (0: only equal lengths share a batch).
        resume: keep the finished shards of a killed run with the same settings.
        on_error: "stop" (bad rows stop the run before it starts) or "skip" (listed in `<output>.errors.tsv`).
        device: "cpu", "cuda", "cuda:N", "mps"; default: this process's accelerate device. A device this machine
            lacks is a `DeviceUnavailableError` before any work (never a CPU fall-back).
        dtype: "float32" (default), or "bfloat16" / "float16": the models run under torch.autocast, features in
            float32 (`audiozoo.runtime`; the outputs differ from float32 within `runtime.low_precision_tolerance`).
            Part of the settings a resumed run must match.
        compile: torch.compile the encoders (`runtime.compile_model`: eager, with a warning, where it fails).
        stop_after_shards: test hook: stop (RunInterrupted) after writing this many shards, as a killed run.
    """
    import audiozoo
    from accelerate import PartialState

    check_device(device)  # before anything is read or loaded; None: accelerate's device, which exists
    resolve_dtype(dtype)
    audiozoo.load()  # the families' Auto classes
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
    for name, value in (("batch_size", batch_size), ("shard_size", shard_size)):
        if value is not None and value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")
    if max_padding < 0:
        raise ValueError(f"max_padding must be >= 0, got {max_padding}")
    # gloo on CPUs: accelerate forms a process group of CPU processes only when told they are CPU processes
    on_cpu = (str(device).startswith("cpu") if device is not None else not torch.cuda.is_available()) or (
        os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes"))
    state = PartialState(cpu=on_cpu)
    rank, world, main = state.process_index, state.num_processes, state.is_main_process
    output, data = Path(output), Path(data)
    folder, merged = shard_folder(output), is_merged_output(output)

    # 1. rows and settings (every process reads and checks alike, so all stop or none)
    examples = examples_from_source(data, audio_column, labelled=False)
    root = None if is_dataset_folder(data) else data if data.is_dir() else data.parent
    names = [example_name(example, root) for example in examples]
    runner = build_task(task, model=model, teachers=teachers, level=level, layer=layer,
                        device=device or state.device, batch_size=batch_size, dtype=dtype, compile=compile)
    batch_size = runner.batch_size  # the family's default on this device where none was given
    num_shards = math.ceil(len(examples) / shard_size)
    # float32 runs keep the settings of runs written before dtype existed (so they still resume)
    precision = {} if runner.compute_dtype == "float32" else {"dtype": runner.compute_dtype}
    settings = json.loads(json.dumps({
        "task": task, "data": str(data.resolve()), "clips": len(examples),
        "clip_names": _digest(names), "shard_size": shard_size, "batch_size": batch_size,
        "max_padding": max_padding, "on_error": on_error, **precision, **runner.settings()}))
    if merged and output.exists():
        if not resume:
            raise FileExistsError(f"{output} exists; delete it or choose another --output")
        with h5py.File(output, "r") as handle:
            old = json.loads(handle.attrs.get("settings", "{}"))
        if old != settings:
            raise ValueError(f"{output} was written with other settings, so it cannot be resumed: "
                             + "; ".join(settings_differences(old, settings)))
        if main:
            remove_shards(folder)
            print(f"{output} is complete; nothing to resume")
        state.wait_for_everyone()
        return output
    old = read_run_settings(folder)
    if old is not None and not resume:
        raise FileExistsError(f"{folder} holds the shards of an earlier run: pass --resume to continue it, or "
                              "delete it")
    if old is not None and old != settings:
        raise ValueError(f"the run in {folder} had other settings, so it cannot be resumed: "
                         + "; ".join(settings_differences(old, settings)))
    if old is None and not merged and folder.is_dir() and any(
            not (path.name.startswith("check-") and path.suffix == ".json") for path in folder.iterdir()):
        raise FileExistsError(f"the output folder {folder} is not empty and holds no run; choose another --output")
    state.wait_for_everyone()
    if main:
        folder.mkdir(parents=True, exist_ok=True)
    state.wait_for_everyone()

    # 2. this process's shards and their rows, checked before anything runs
    own = [index for index in range(num_shards) if index % world == rank]
    done = finished_shards(folder, own) if old is not None else set()
    mine = [index for index in own if index not in done]
    if main and done:
        print(f"resuming: {len(done)} of this process's {len(own)} shards are finished")
    rows = [row for index in mine for row in range(index * shard_size, min(len(examples), (index + 1) * shard_size))]
    with ThreadPoolExecutor(max_workers=max(1, min(16, 2 * num_workers))) as pool:
        checks = dict(zip(rows, pool.map(lambda row: check_example(examples[row]), rows, chunksize=64), strict=True))
    bad = {row: message for row, (message, _) in checks.items() if message is not None}
    (folder / CHECK_FILE.format(rank)).write_text(json.dumps(sorted(bad.items())), encoding="utf-8")
    state.wait_for_everyone()
    all_bad = sorted(item for other in range(world)
                     for item in map(tuple, json.loads((folder / CHECK_FILE.format(other)).read_text("utf-8"))))
    if all_bad and on_error == "stop":
        raise ValueError(_bad_rows_message(all_bad, examples, names))
    if all_bad and main:
        print(f"skipping {len(all_bad)} row(s) that cannot be read (listed in {errors_path(output)} at the end)")
    if main:  # from here on the folder holds a run that --resume continues
        write_run_settings(folder, settings)
    state.wait_for_everyone()

    # 3. decode in workers, batch clips of similar length, write each shard when it is complete
    plan = {index: sorted((row for row in range(index * shard_size, min(len(examples), (index + 1) * shard_size))
                           if row not in bad), key=lambda row: (-checks[row][1], row)) for index in mine}
    order = [row for index in mine for row in plan[index]]
    loader = torch.utils.data.DataLoader(_ClipReader(examples, order, runner.sampling_rate), batch_size=None,
                                         num_workers=num_workers, collate_fn=_identity)
    items = iter(loader)
    bar = _progress(len(order), f"{task} (process {rank + 1} of {world})" if world > 1 else task,
                    progress and main)
    written = 0
    try:
        for index in mine:
            results: dict[int, np.ndarray] = {}
            errors = {row: message for row, message in bad.items() if row // shard_size == index}
            batch: list[tuple[int, np.ndarray]] = []
            for _ in plan[index]:
                row, waveform, message = next(items)
                if message is not None:
                    _fail(row, message, on_error, examples, errors)
                    bar.update(1)
                    continue
                if batch and (len(batch) == batch_size or not _fits(batch, waveform, runner, max_padding)):
                    bar.update(_run_batch(runner, batch, results, errors, on_error, examples))
                    batch = []
                batch.append((row, waveform))
            if batch:
                bar.update(_run_batch(runner, batch, results, errors, on_error, examples))
            done_rows = sorted(results)
            write_shard(shard_path(folder, index), index, done_rows, [names[row] for row in done_rows],
                        [results[row] for row in done_rows], list(errors.items()), runner.time_axis, runner.dtype)
            written += 1
            if stop_after_shards is not None and written >= stop_after_shards and index != mine[-1]:
                raise RunInterrupted(f"stopped after {written} shard(s) (stop_after_shards)")
    finally:
        bar.close()
        del items

    # 4. the main process merges (or indexes) every shard in source order
    state.wait_for_everyone()
    if main:
        _finish(runner, output, folder, merged, num_shards, examples, names, settings, world, progress)
    state.wait_for_everyone()
    return output


def _digest(names: list[str]) -> str:
    import hashlib

    digest = hashlib.sha1()
    for name in names:
        digest.update(name.encode() + b"\0")
    return digest.hexdigest()


def _fits(batch, waveform: np.ndarray, runner: InferenceTask, max_padding: float) -> bool:
    """Whether a clip may join the batch: windowed models take any lengths; others pad each clip by at most
    `max_padding` of its length (0: equal lengths only)."""
    if runner.windowed:
        return True
    lengths = [wave.size for _, wave in batch] + [waveform.size]
    return max(lengths) <= min(lengths) * (1.0 + max_padding)


def _fail(row: int, message: str, on_error: str, examples: list[Example], errors: dict[int, str]) -> None:
    if on_error == "stop":
        raise ValueError(f"{examples[row].source}: {message} (pass --on_error skip to skip and list such rows)")
    errors[row] = message


def _run_batch(runner: InferenceTask, batch, results: dict, errors: dict, on_error: str, examples) -> int:
    """Run a batch; if it fails, run its clips one by one so that only the clip at fault is reported."""
    try:
        outputs = runner([waveform for _, waveform in batch])
    except (RuntimeError, ValueError) as error:
        if len(batch) > 1:
            return sum(_run_batch(runner, [item], results, errors, on_error, examples) for item in batch)
        _fail(batch[0][0], f"the model cannot process it: {error}", on_error, examples, errors)
        return 1
    for (row, _), value in zip(batch, outputs, strict=True):
        results[row] = value
    return len(batch)


def _finish(runner: InferenceTask, output: Path, folder: Path, merged: bool, num_shards: int, examples, names,
            settings: dict, world: int, progress: bool) -> None:
    paths = [shard_path(folder, index) for index in range(num_shards)]
    missing = [path.name for path in paths if not path.is_file()]
    if missing:
        raise RuntimeError(f"shards {missing[:5]} are missing in {folder} (did a process fail?); run again with "
                           "--resume")
    errors = [(row, examples[row].source, names[row], message) for row, message in shard_errors(paths)]
    error_file = errors_path(output)
    if errors:
        write_errors(error_file, errors)
    elif error_file.exists():
        error_file.unlink()
    attributes = {**runner.attributes(), "settings": settings}
    if merged:
        layout = merge_shards(paths, output, runner.value_name, runner.time_axis, runner.pad_value, runner.dtype,
                              attributes, runner.labels)
        remove_shards(folder)
    else:
        write_index(folder, paths, runner.value_name, runner.time_axis, attributes, runner.labels)
        for index in range(world):
            (folder / f"check-{index:05d}.json").unlink(missing_ok=True)
        layout = "shards"
    if progress:
        clips = len(examples) - len(errors)
        skipped = f"; {len(errors)} row(s) skipped, listed in {error_file}" if errors else ""
        print(f"wrote {runner.value_name} of {clips} clips to {output} ({layout}){skipped}")


def main(argv: list[str] | None = None) -> int:
    """`python -m audiozoo.inference.runner {embed,predict,pseudo-label} ...` (also under `accelerate launch`)."""
    parser = argparse.ArgumentParser(prog="python -m audiozoo.inference.runner",
                                     description="dataset-scale inference: embed, predict, pseudo-label")
    commands = parser.add_subparsers(dest="command", required=True)
    add_embed_arguments(commands.add_parser("embed", help="clip or frame embeddings of any encoder"))
    add_predict_arguments(commands.add_parser("predict", help="clip or frame class probabilities"))
    add_pseudo_label_arguments(commands.add_parser("pseudo-label", help="PretrainedSED teacher-ensemble logits"))
    args = parser.parse_args(argv)
    run_inference(args.command, **inference_options(args.command, args))
    return 0


__all__ = ["RunInterrupted", "check_example", "decode_example", "main", "run_inference"]


if __name__ == "__main__":
    raise SystemExit(main())
