"""What the runner computes for a batch of clips: embeddings, class probabilities, teacher-ensemble pseudo labels.

A task takes a list of mono float32 waveforms at its `sampling_rate` and returns one array per clip. It says how
its outputs are stored (`value_name`, `dtype`, `time_axis` — which axis of a clip's array is time, None for clip
outputs —, and `pad_value` when clips of different lengths are padded to one [N, ...] array rather than stored
ragged) and what they depend on (`settings`, checked when a run is resumed).

Windowed models (PretrainedSED frame classifiers) run as their pipeline and the original inference script do:
the clip is cut into windows of `sed_head.window_seconds` (10 s), the last one zero-padded, and the windows' frames
are concatenated. `windowed` tasks take clips of any length in one batch (their windows are all alike).

Every task runs its models on `device`, under `torch.autocast` at `dtype` (bfloat16 / float16; the front ends stay
float32), compiled with `compile=True` (audiozoo.runtime); `batch_size=None` is the family's default on that device
(`runtime.default_batch_size`).
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import torch
from transformers import (
    AutoFeatureExtractor,
    AutoModel,
    AutoModelForAudioClassification,
    AutoModelForAudioFrameClassification,
)

from ..layers.heads import masked_mean
from ..layers.sed_head import SedHeadSettings
from ..pipelines.audio_classification import aggregate_windows, split_windows
from ..runtime import autocast, compile_model, default_batch_size, resolve_dtype, warn_low_precision

# what padded frames of a shorter clip hold in a [N, C, T] pseudo-label array: a confident "absent", the value
# `audiozoo distill`'s reader itself pads with when a clip's logits end before its training window does
ABSENT_LOGIT = -20.0


class TaskSetupError(Exception):
    """A setting that fails for every clip (not a ValueError, so the runner never mistakes it for one bad clip)."""


def model_identity(name_or_path: str) -> dict:
    """What identifies a model for a resumed run: the resolved folder and a digest of its files' names, sizes and
    modification times (cheap; a retrained model in the same folder is another model), or the Hub id."""
    path = Path(name_or_path)
    if not path.is_dir():
        return {"model": name_or_path}
    digest = hashlib.sha1()
    for file in sorted(item for item in path.iterdir() if item.is_file()):
        stat = file.stat()
        digest.update(f"{file.name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return {"model": str(path.resolve()), "model_files": digest.hexdigest()}


def _labels(config) -> list[str] | None:
    id2label = getattr(config, "id2label", None) or {}
    if not id2label:
        return None
    return [str(id2label[index]) for index in range(len(id2label))]


def _window_seconds(model) -> float | None:
    """The window of a PretrainedSED-head frame classifier, None for other models."""
    if not getattr(model, "uses_sed_head", False):
        return None
    return SedHeadSettings.from_dict(getattr(model.config, "sed_head", None)).window_seconds


def _windows(waveforms: list[np.ndarray], window: int) -> tuple[torch.Tensor, list[int]]:
    """Clips -> [W, window] zero-padded windows of all clips, and each clip's window count."""
    counts = [max(1, math.ceil(wave.size / window)) for wave in waveforms]
    windows = np.zeros((sum(counts), window), dtype=np.float32)
    start = 0
    for wave, count in zip(waveforms, counts, strict=True):
        windows[start : start + count].reshape(-1)[: wave.size] = wave
        start += count
    return torch.from_numpy(windows), counts


class InferenceTask:
    """The interface the runner uses (see the module docstring)."""

    name: str
    value_name: str
    dtype = np.float32
    time_axis: int | None = None
    pad_value: float | None = None
    windowed = False
    sampling_rate: int
    labels: list[str] | None = None
    frame_rate: float | None = None

    def __init__(self, device: str | torch.device = "cpu", batch_size: int | None = None, dtype: str = "float32",
                 compile: bool = False):
        self.device = torch.device(device)
        self.batch_size = batch_size
        resolve_dtype(dtype)  # an unknown name fails before any model loads
        self.compute_dtype, self.compile = str(dtype).removeprefix("torch."), bool(compile)

    def _prepare_models(self, models) -> None:
        """After the models are loaded: the default batch size of the (first) model's family on this device, a
        warning where the family strays far from float32 at this dtype, torch.compile where asked."""
        model_type = models[0].config.model_type
        if self.batch_size is None:
            self.batch_size = default_batch_size(model_type, self.device)
        warn_low_precision(model_type, self.compute_dtype)
        if self.compile:
            for model in models:
                compile_model(model)

    def _run(self, model, inputs: dict, **kwargs):
        """`model(**inputs)` at the task's compute dtype (features are computed before, in float32)."""
        with autocast(self.device, self.compute_dtype):
            return model(**inputs, **kwargs)

    def settings(self) -> dict:
        raise NotImplementedError

    def attributes(self) -> dict:
        """Stored with the output (HDF5 attributes)."""
        values = {"task": self.name, **{key: value for key, value in self.settings().items()
                                         if key not in ("model_files", "teacher_files")}}
        if self.frame_rate is not None:
            values["frame_rate"] = float(self.frame_rate)
        return values

    def __call__(self, waveforms: list[np.ndarray]) -> list[np.ndarray]:
        raise NotImplementedError

    def _features(self, feature_extractor, waveforms) -> dict:
        return dict(feature_extractor(list(waveforms), sampling_rate=feature_extractor.sampling_rate,
                                      return_tensors="pt", device=self.device))


class EmbedTask(InferenceTask):
    """Encoder outputs: per clip [D] (`level="clip"`: the pooled output where the model pools, else the mean of its
    valid time steps) or [T, D] (`level="frame"`: the model's per-time-step features, `frame_features`, at
    `config.frame_rate`). `layer=N` takes hidden state N instead of the final output (clip level: the mean of its
    valid time steps)."""

    name = "embed"
    value_name = "embeddings"

    def __init__(self, model: str, level: str = "clip", layer: int | None = None, device="cpu",
                 batch_size: int | None = None, dtype: str = "float32", compile: bool = False):
        super().__init__(device, batch_size, dtype, compile)
        if level not in ("clip", "frame"):
            raise ValueError(f"level must be 'clip' or 'frame', got {level!r}")
        self.model_name, self.level, self.layer = model, level, layer
        self.feature_extractor = AutoFeatureExtractor.from_pretrained(model)
        self.model = AutoModel.from_pretrained(model, dtype=torch.float32).to(self.device).eval()
        self.sampling_rate = self.feature_extractor.sampling_rate
        has_frames = hasattr(self.model, "frame_features")
        if not has_frames and (level == "frame" or layer is not None):
            raise ValueError(f"{model}: {type(self.model).__name__} has no per-time-step features (frame_features), "
                             "so frame-level and per-layer embeddings are not defined for it; use its clip embedding, "
                             "or `predict --level frame` with its frame classifier")
        if level == "frame":
            self.time_axis = 0
            self.frame_rate = float(self.model.config.frame_rate)
        self._prepare_models([self.model])

    def settings(self) -> dict:
        return {**model_identity(self.model_name), "level": self.level, "layer": self.layer}

    @torch.no_grad()
    def __call__(self, waveforms):
        inputs = self._features(self.feature_extractor, waveforms)
        encoded = self._run(self.model, inputs, output_hidden_states=self.layer is not None)
        if self.layer is not None:
            states = encoded.hidden_states
            if not -len(states) <= self.layer < len(states):
                raise TaskSetupError(f"layer {self.layer} does not exist: {self.model_name} has hidden states 0 to "
                                 f"{len(states) - 1}")
            encoded = type(encoded)(**{**encoded, "last_hidden_state": states[self.layer]})
        if self.level == "clip" and self.layer is None:
            pooled = getattr(encoded, "pooler_output", None)
            if pooled is None:
                pooled = masked_mean(encoded.last_hidden_state.float(), getattr(encoded, "attention_mask", None))
            return list(pooled.float().cpu().numpy())
        frames, mask = self.model.frame_features(encoded)
        if self.level == "clip":
            return list(masked_mean(frames.float(), mask).cpu().numpy())
        frames = frames.float().cpu().numpy()
        if mask is None:
            return list(frames)
        mask = mask.bool().cpu().numpy()
        return [clip[valid] for clip, valid in zip(frames, mask, strict=True)]


class PredictTask(InferenceTask):
    """Class probabilities: per clip [C] from a clip classifier (softmax for single-label checkpoints, else
    sigmoid), or [T, C] from a frame classifier (`probabilities`: PretrainedSED models on windows as their
    pipeline, cut to the frames that start inside the clip; other frame heads on the whole clip, valid frames)."""

    name = "predict"
    value_name = "probabilities"

    def __init__(self, model: str, level: str = "clip", device="cpu", batch_size: int | None = None,
                 dtype: str = "float32", compile: bool = False):
        super().__init__(device, batch_size, dtype, compile)
        if level not in ("clip", "frame"):
            raise ValueError(f"level must be 'clip' or 'frame', got {level!r}")
        self.model_name, self.level = model, level
        self.feature_extractor = AutoFeatureExtractor.from_pretrained(model)
        auto = AutoModelForAudioClassification if level == "clip" else AutoModelForAudioFrameClassification
        try:
            self.model = auto.from_pretrained(model, dtype=torch.float32).to(self.device).eval()
        except ValueError as error:
            other = "frame" if level == "clip" else "clip"
            raise ValueError(f"{model} has no {level} classifier ({error}); try --level {other}") from error
        self.sampling_rate = self.feature_extractor.sampling_rate
        self.labels = _labels(self.model.config)
        self.activation = "softmax" if self.model.config.problem_type == "single_label_classification" else "sigmoid"
        self.window_seconds = _window_seconds(self.model) if level == "frame" else None
        self.windowed = self.window_seconds is not None
        if level == "frame":
            self.time_axis = 0
            self.frame_rate = float(self.model.config.frame_rate)
        self._prepare_models([self.model])

    def settings(self) -> dict:
        return {**model_identity(self.model_name), "level": self.level}

    def attributes(self) -> dict:
        values = super().attributes()
        values["activation"] = "sigmoid" if self.level == "frame" else self.activation
        if self.windowed:
            values["window_seconds"] = self.window_seconds
        return values

    @torch.no_grad()
    def __call__(self, waveforms):
        if self.level == "clip":
            window = getattr(self.model, "window_seconds", None)
            window = int(round(window * self.sampling_rate)) if window else None
            if window is not None and max(wave.size for wave in waveforms) > window:
                return [self._clip_in_windows(wave, window) for wave in waveforms]
            logits = self._run(self.model, self._features(self.feature_extractor, waveforms)).logits.float()
            probabilities = logits.softmax(-1) if self.activation == "softmax" else logits.sigmoid()
            return list(probabilities.cpu().numpy())
        if self.windowed:
            return self._windowed(waveforms)
        output = self._run(self.model, self._features(self.feature_extractor, waveforms))
        probabilities = output.probabilities if output.probabilities is not None else output.logits.float().sigmoid()
        probabilities = probabilities.float().cpu().numpy()
        if output.frame_mask is None:
            return list(probabilities)
        mask = output.frame_mask.bool().cpu().numpy()
        return [clip[valid] for clip, valid in zip(probabilities, mask, strict=True)]

    def _clip_in_windows(self, wave: np.ndarray, window: int) -> np.ndarray:
        """A clip longer than a fixed-window clip classifier's window: classified window by window (the last one
        zero-padded) and aggregated as the audio-classification pipeline does (sigmoid: the highest window
        probability; softmax: the mean window probability weighted by each window's audio)."""
        windows, audio = split_windows(wave, window)
        logits = torch.cat([self._run(self.model, self._features(self.feature_extractor,
                                                                 list(windows[start : start + self.batch_size])))
                            .logits.float().cpu() for start in range(0, len(windows), self.batch_size)])
        return aggregate_windows(logits, torch.from_numpy(audio), self.activation).numpy()

    def _windowed(self, waveforms):
        window = int(round(self.window_seconds * self.sampling_rate))
        windows, counts = _windows(waveforms, window)
        frames = torch.cat([self._run(self.model, self._features(self.feature_extractor,
                                                                 windows[start : start + self.batch_size]))
                            .probabilities.float().cpu() for start in range(0, windows.shape[0], self.batch_size)])
        results, start = [], 0
        for wave, count in zip(waveforms, counts, strict=True):
            clip = frames[start : start + count].reshape(-1, frames.shape[-1]).numpy()
            start += count
            # frames that start after the audio hold only padding (as the sound-event-detection pipeline)
            keep = max(1, math.ceil(wave.size / self.sampling_rate * self.frame_rate - 1e-9))
            results.append(clip[:keep])
        return results


class PseudoLabelTask(InferenceTask):
    """PretrainedSED's teacher ensemble: each teacher's strong (frame) logits on the clip's 10 s windows (the last
    one zero-padded, all of its frames kept, as the released file keeps 250 frames of every clip), averaged over
    the teachers as logits, per clip [C, T] with T = windows x frames per window, stored as float16.

    The released ensemble file holds "ensembled logits" that the student turns into targets with a sigmoid; the
    PretrainedSED repository does not include the script that made it. The same authors' DCASE 2024 code
    (CPJKU/cpjku_dcase24, `ex_stage2.py ensemble_predictions`) ensembles teachers' stored strong logits with
    `np.mean` over the models, into the same `filenames` + `strong_logits` layout; so logits are averaged here.
    """

    name = "pseudo-label"
    value_name = "strong_logits"
    dtype = np.float16
    time_axis = 1
    pad_value = ABSENT_LOGIT
    windowed = True

    def __init__(self, teachers, device="cpu", batch_size: int | None = None, dtype: str = "float32",
                 compile: bool = False):
        super().__init__(device, batch_size, dtype, compile)
        teachers = [str(teacher) for teacher in teachers]
        if not teachers:
            raise ValueError("pseudo labels need at least one teacher")
        self.teacher_names = teachers
        self.members = []
        for teacher in teachers:
            model = AutoModelForAudioFrameClassification.from_pretrained(teacher, dtype=torch.float32)
            if _window_seconds(model) is None:
                raise ValueError(f"teacher {teacher} ({type(model).__name__}) has no PretrainedSED prediction head "
                                 "(config.sed_head); pseudo labels come from PretrainedSED frame classifiers")
            self.members.append((model.to(self.device).eval(), AutoFeatureExtractor.from_pretrained(teacher)))
        self._check_teachers()
        self._prepare_models([model for model, _ in self.members])
        first, extractor = self.members[0]
        self.labels = _labels(first.config)
        self.frame_rate = float(first.config.frame_rate)
        self.window_seconds = _window_seconds(first)
        self.sampling_rate = extractor.sampling_rate

    def _check_teachers(self) -> None:
        """Teachers must predict the same classes in the same order, at the same frame rate, on the same windows
        and input rate; an error names the teachers that differ."""
        properties = {
            "label sets": lambda model, extractor: _labels(model.config),
            "frame rates": lambda model, extractor: float(model.config.frame_rate),
            "window lengths": lambda model, extractor: _window_seconds(model),
            "sampling rates": lambda model, extractor: extractor.sampling_rate,
        }
        for what, get in properties.items():
            values = [get(model, extractor) for model, extractor in self.members]
            if any(value != values[0] for value in values[1:]):
                groups: dict[str, list[str]] = {}
                for teacher, value in zip(self.teacher_names, values, strict=True):
                    shown = f"{len(value)} classes {value[:3]}..." if isinstance(value, list) else str(value)
                    groups.setdefault(shown, []).append(teacher)
                detail = "; ".join(f"{', '.join(names)}: {value}" for value, names in groups.items())
                raise ValueError(f"the teachers have different {what}, so their logits cannot be averaged: {detail}")

    def settings(self) -> dict:
        identities = [model_identity(teacher) for teacher in self.teacher_names]
        return {"teachers": [identity["model"] for identity in identities],
                "teacher_files": [identity.get("model_files") for identity in identities]}

    def attributes(self) -> dict:
        values = super().attributes()
        values["teachers"] = json.dumps(values["teachers"])
        values["model"] = values["teachers"]
        values["window_seconds"] = self.window_seconds
        values["ensemble"] = "mean of the teachers' strong logits"
        return values

    @torch.no_grad()
    def teacher_logits(self, waveforms, member: int) -> list[np.ndarray]:
        """One teacher's strong logits per clip, [C, T] float32 (what the ensemble averages)."""
        model, extractor = self.members[member]
        windows, counts = _windows(waveforms, int(round(self.window_seconds * self.sampling_rate)))
        logits = torch.cat([self._run(model, self._features(extractor, windows[start : start + self.batch_size]))
                            .logits.float().cpu() for start in range(0, windows.shape[0], self.batch_size)])
        clips, start = [], 0
        for count in counts:
            clips.append(logits[start : start + count].reshape(-1, logits.shape[-1]).T.numpy())
            start += count
        return clips

    def __call__(self, waveforms):
        total = None
        for member in range(len(self.members)):
            logits = self.teacher_logits(waveforms, member)
            total = logits if total is None else [sum_ + clip for sum_, clip in zip(total, logits, strict=True)]
        return [clip / len(self.members) for clip in total]


def build_task(task: str, *, model: str | None = None, teachers=(), level: str = "clip", layer: int | None = None,
               device="cpu", batch_size: int | None = None, dtype: str = "float32",
               compile: bool = False) -> InferenceTask:
    """The task a command runs: "embed", "predict" or "pseudo-label"."""
    run = {"dtype": dtype, "compile": compile}
    if task == "pseudo-label":
        if model is not None:
            raise ValueError("pseudo-label takes teachers, not a model")
        return PseudoLabelTask(teachers, device, batch_size, **run)
    if model is None:
        raise ValueError(f"{task} needs a model")
    if teachers:
        raise ValueError(f"{task} takes one model, not teachers")
    if task == "embed":
        return EmbedTask(model, level, layer, device, batch_size, **run)
    if task == "predict":
        if layer is not None:
            raise ValueError("--layer is for embed")
        return PredictTask(model, level, device, batch_size, **run)
    raise ValueError(f"unknown task {task!r}; expected embed, predict or pseudo-label")


__all__ = ["ABSENT_LOGIT", "EmbedTask", "InferenceTask", "PredictTask", "PseudoLabelTask", "TaskSetupError",
           "build_task", "model_identity"]
