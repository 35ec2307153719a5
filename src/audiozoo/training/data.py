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
from pathlib import Path

import numpy as np
import soundfile
import torch

from ..audio.io import resample, to_mono
# the source readers live in audiozoo.data.sources (inference reads the same sources); importable from here as before
from ..data.sources import (
    AUDIO_SUFFIXES,
    Example,
    example_file,
    examples_from_dataset,
    examples_from_folder,
    examples_from_manifest,
    examples_from_source,
)


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
            info = soundfile.info(example_file(example))
        except (RuntimeError, soundfile.LibsndfileError) as error:
            raise ValueError(f"{example.source}: cannot read the audio ({error})") from error
        if info.frames == 0:
            raise ValueError(f"{example.source}: the audio is empty")
        if info.samplerate != sampling_rate and not resample_audio:
            raise ValueError(
                f"{example.source}: sampled at {info.samplerate} Hz, the model expects {sampling_rate} Hz; resample "
                "the data or pass --resample (soxr) to resample while loading"
            )


def load_example_audio(example: Example, sampling_rate: int) -> np.ndarray:
    """Mono float32 samples at `sampling_rate` (soxr if the file's rate differs)."""
    samples, rate = soundfile.read(example_file(example), dtype="float32", always_2d=False)
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
    "AUDIO_SUFFIXES",
    "ClipDataset",
    "Example",
    "attach_events",
    "check_examples",
    "examples_from_dataset",
    "examples_from_folder",
    "examples_from_manifest",
    "examples_from_source",
    "load_example_audio",
    "read_events_table",
]
