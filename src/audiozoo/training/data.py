"""Training data: labelled clips from manifests, folders or `datasets`, checked before training starts.

Audio is decoded with soundfile (never torchcodec, which cannot load here) and must already be at the model's
rate unless `resample=True` (then soxr resamples); stereo is averaged. Clips are cut or zero-padded to
`clip_seconds` (a random window for training, the start for evaluation) with a mask of the real samples.
Targets: a class id (single-label), a many-hot vector (multi-label, labels joined by ";"), or frame targets
[T, C] from an events table (onset/offset per file, as DESED / AudioSet-strong TSVs).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile
import torch

from ..audio.io import resample, to_mono
from .manifest import ManifestRow, read_manifest

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")


@dataclass(frozen=True)
class Example:
    """One labelled clip: where it is, its labels, and the manifest line it came from (for error messages)."""

    path: Path | None
    labels: tuple[str, ...]
    split: str | None = None
    group: str | None = None
    source: str = ""
    audio: bytes | None = None  # encoded bytes (datasets with Audio(decode=False))
    events: tuple[tuple[float, float, str], ...] = field(default_factory=tuple)


def examples_from_manifest(manifest: str | Path) -> list[Example]:
    """Rows of a CSV/TSV manifest (see `read_manifest`); a label cell may hold several labels joined by ";"."""
    rows: list[ManifestRow] = read_manifest(manifest)
    return [Example(row.path, tuple(part.strip() for part in row.label.split(";") if part.strip()), row.split,
                    row.group, f"{manifest}, line {row.line}") for row in rows]


def examples_from_folder(folder: str | Path) -> list[Example]:
    """`folder/<label>/<clip>.wav` -> examples (one label per sub-folder)."""
    folder = Path(folder)
    examples = [Example(path, (path.parent.name,), source=str(path))
                for path in sorted(folder.glob("*/*")) if path.suffix.lower() in AUDIO_SUFFIXES]
    if not examples:
        raise ValueError(f"{folder}: expected audio files in one sub-folder per label (e.g. {folder}/kick/a.wav)")
    return examples


def examples_from_dataset(dataset, audio_column: str = "audio", label_column: str = "label") -> list[Example]:
    """A `datasets.Dataset` whose audio column is cast to `Audio(decode=False)` ({"bytes", "path"}): decoded
    here with soundfile, since datasets' own decoding needs torchcodec. Integer labels map to names through the
    column's ClassLabel feature when there is one."""
    names = getattr(dataset.features.get(label_column), "names", None)
    examples = []
    for index, record in enumerate(dataset):
        audio = record[audio_column]
        if not isinstance(audio, dict) or not (audio.get("bytes") or audio.get("path")):
            raise ValueError(
                f"dataset row {index}: column {audio_column!r} must be cast to Audio(decode=False) "
                f"({{'bytes', 'path'}}), got {type(audio).__name__}"
            )
        value = record[label_column]
        labels = value if isinstance(value, (list, tuple)) else [value]
        labels = tuple(names[item] if names is not None and isinstance(item, int) else str(item) for item in labels)
        path = Path(audio["path"]) if audio.get("path") and not audio.get("bytes") else None
        examples.append(Example(path, labels, source=f"dataset row {index}", audio=audio.get("bytes")))
    return examples


def examples_from_source(source: str | Path, audio_column: str = "audio", label_column: str = "label") -> list[Example]:
    """A CSV/TSV manifest, a `datasets` folder written by `save_to_disk` (its audio column is read undecoded), or
    a folder with one sub-folder per label."""
    source = Path(source)
    if source.is_file():
        return examples_from_manifest(source)
    if any((source / name).is_file() for name in ("dataset_info.json", "state.json", "dataset_dict.json")):
        from datasets import Audio, load_from_disk

        dataset = load_from_disk(str(source))
        if hasattr(dataset, "keys"):  # a DatasetDict: its splits become the split column
            examples = []
            for split in dataset:
                rows = examples_from_dataset(dataset[split].cast_column(audio_column, Audio(decode=False)),
                                             audio_column, label_column)
                name = {"validation": "valid"}.get(split, split)
                examples += [Example(e.path, e.labels, name if name in ("train", "valid", "test") else None, e.group,
                                     f"{source} [{split}] {e.source}", e.audio) for e in rows]
            return examples
        return examples_from_dataset(dataset.cast_column(audio_column, Audio(decode=False)), audio_column, label_column)
    if source.is_dir():
        return examples_from_folder(source)
    raise FileNotFoundError(f"training data not found: {source} (expected a manifest, a datasets folder or a folder "
                            "of label sub-folders)")


def read_events_table(path: str | Path) -> dict[str, list[tuple[float, float, str]]]:
    """filename -> [(onset, offset, label)] from a TSV with columns filename, onset, offset, event_label."""
    events: dict[str, list[tuple[float, float, str]]] = {}
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        needed = {"filename", "onset", "offset", "event_label"}
        if not needed <= set(reader.fieldnames or []):
            raise ValueError(f"{path}: expected columns {sorted(needed)}, found {reader.fieldnames}")
        for line, record in enumerate(reader, start=2):
            if not record["event_label"]:
                events.setdefault(record["filename"], [])
                continue
            try:
                onset, offset = float(record["onset"]), float(record["offset"])
            except ValueError as error:
                raise ValueError(f"{path}, line {line}: onset/offset must be numbers ({error})") from error
            if not 0 <= onset < offset:
                raise ValueError(f"{path}, line {line}: need 0 <= onset < offset, got {onset}, {offset}")
            events.setdefault(record["filename"], []).append((onset, offset, record["event_label"]))
    return events


def attach_events(examples: list[Example], events: dict[str, list[tuple[float, float, str]]]) -> list[Example]:
    """Give every example its events (by file name); the clip labels become the labels of its events."""
    attached = []
    for example in examples:
        name = example.path.name if example.path is not None else ""
        if name not in events:
            raise ValueError(f"{example.source}: {name} has no row in the events table (add a row with an empty "
                             "event_label for a clip without events)")
        clip_events = tuple(events[name])
        attached.append(Example(example.path, tuple(sorted({label for *_, label in clip_events})), example.split,
                                example.group, example.source, example.audio, clip_events))
    return attached


def check_examples(examples: Sequence[Example], labels: Sequence[str], sampling_rate: int, resample_audio: bool) -> None:
    """Everything that would fail mid-training fails now, naming the row: unreadable audio, unknown labels, a
    sampling rate other than the model's (unless resampling was asked for), empty clips."""
    known = set(labels)
    for example in examples:
        unknown = [label for label in example.labels if label not in known]
        if unknown:
            raise ValueError(f"{example.source}: unknown label(s) {unknown}; the model's labels are {list(labels)[:10]}")
        try:
            info = soundfile.info(example.path if example.audio is None else _bytes_file(example.audio))
        except (RuntimeError, soundfile.LibsndfileError) as error:
            raise ValueError(f"{example.source}: cannot read the audio ({error})") from error
        if info.frames == 0:
            raise ValueError(f"{example.source}: the audio is empty")
        if info.samplerate != sampling_rate and not resample_audio:
            raise ValueError(
                f"{example.source}: sampled at {info.samplerate} Hz, the model expects {sampling_rate} Hz; resample "
                "the data or pass --resample (soxr) to resample while loading"
            )


def _bytes_file(data: bytes):
    import io

    return io.BytesIO(data)


def load_example_audio(example: Example, sampling_rate: int) -> np.ndarray:
    """Mono float32 samples at `sampling_rate` (soxr if the file's rate differs)."""
    source = example.path if example.audio is None else _bytes_file(example.audio)
    samples, rate = soundfile.read(source, dtype="float32", always_2d=False)
    samples = to_mono(samples) if samples.ndim == 2 else samples
    if rate != sampling_rate:
        samples = resample(samples, rate, sampling_rate)
    return np.ascontiguousarray(samples, dtype=np.float32)


class ClipDataset(torch.utils.data.Dataset):
    """Labelled clips -> {"waveform" [N], "length", "target"} with N = clip_seconds * rate.

    task: "single" (target = class id), "multi" (many-hot [C]) or "frame" (frame targets [T, C] at `frame_rate`
    over the clip window, from the examples' events).
    """

    def __init__(self, examples: Sequence[Example], labels: Sequence[str], sampling_rate: int, clip_seconds: float,
                 task: str = "single", train: bool = False, frame_rate: float | None = None, seed: int = 0):
        if task not in ("single", "multi", "frame"):
            raise ValueError(f"task must be single, multi or frame, got {task!r}")
        if task == "frame" and not frame_rate:
            raise ValueError("frame targets need the model's frame_rate")
        self.examples, self.labels = list(examples), list(labels)
        self.index = {label: position for position, label in enumerate(self.labels)}
        self.sampling_rate, self.samples = sampling_rate, int(round(clip_seconds * sampling_rate))
        self.task, self.train, self.frame_rate = task, train, frame_rate
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        """Crops depend on (seed, epoch, index) only, so a resumed run crops alike whatever the loader prefetched."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.examples)

    def targets(self) -> np.ndarray:
        """Clip-level many-hot targets [N, C] of every example (for samplers and class statistics)."""
        matrix = np.zeros((len(self.examples), len(self.labels)), dtype=np.float32)
        for row, example in enumerate(self.examples):
            for label in example.labels:
                matrix[row, self.index[label]] = 1.0
        return matrix

    def __getitem__(self, item: int) -> dict:
        example = self.examples[item]
        samples = load_example_audio(example, self.sampling_rate)
        start = 0
        if samples.size > self.samples and self.train:
            rng = np.random.default_rng((self.seed, self.epoch, item))
            start = int(rng.integers(samples.size - self.samples + 1))
        window = samples[start : start + self.samples]
        waveform = np.zeros(self.samples, dtype=np.float32)
        waveform[: window.size] = window
        return {"waveform": torch.from_numpy(waveform), "length": window.size, "target": self._target(example, start),
                "index": item, "start": start}

    def _target(self, example: Example, start: int) -> torch.Tensor:
        if self.task == "single":
            return torch.tensor(self.index[example.labels[0]], dtype=torch.long)
        if self.task == "multi":
            target = torch.zeros(len(self.labels))
            for label in example.labels:
                target[self.index[label]] = 1.0
            return target
        frames = int(round(self.samples / self.sampling_rate * self.frame_rate))
        target = torch.zeros(frames, len(self.labels))
        offset_seconds = start / self.sampling_rate
        for onset, offset, label in example.events:
            first = max(0, int((onset - offset_seconds) * self.frame_rate))
            last = min(frames, int(np.ceil((offset - offset_seconds) * self.frame_rate)))
            if last > first:
                target[first:last, self.index[label]] = 1.0
        return target


__all__ = [
    "ClipDataset",
    "Example",
    "attach_events",
    "check_examples",
    "examples_from_dataset",
    "examples_from_folder",
    "examples_from_manifest",
    "load_example_audio",
    "read_events_table",
]
