"""`pipeline("audio-classification")` that decodes with soundfile and resamples with soxr.

transformers' own pipeline decodes paths with the ffmpeg binary and resamples with torchaudio; neither is
a dependency here. After `import audiozoo` the task uses this subclass for every model. It keeps the parent's
behaviour for what the parent handles and we do not (URLs, which the parent fetches; torchcodec decoders; with
ffmpeg installed, files in formats libsndfile cannot read) and adds integer PCM, multi-channel arrays, a
`sampling_rate=` call argument, `allow_truncated=`, and the input checks of `decode_audio_input`.

Models that run on fixed windows say so with `model.window_seconds` (the PretrainedSED families' clip classifiers:
10 s, or their `sed_head.window_seconds`; ATST-Frame and fPaSST refuse longer input). A clip no longer than one
window goes through the model whole, as for every other model. A longer clip is cut into windows of that length,
the last one zero-padded (as the sound-event-detection pipeline cuts it), the windows are classified in batches of
`chunk_batch_size` (default `audiozoo.runtime.default_batch_size` for the family and device; `batch_size` sets it for
these models, whose files go through one at a time), and
the windows' clip outputs are aggregated per class by the score function (`function_to_apply`):

- sigmoid (multi-label; the default for these models' PretrainedSED heads, which are trained as multi-label): the
  maximum over the windows of the window's probability (a sound anywhere in the clip counts, however long the
  clip; the padding of the last window cannot lower a score);
- softmax (single-label): the mean over the windows of the window's probability distribution, each window
  weighted by the seconds of audio it holds (the zero padding of the last window does not count);
- none: the same weighted mean of the window logits.

For a model with a PretrainedSED head, a window's clip output is its head's clip (weak) logits, as its frame
classifier's `clip_logits`.

`autocast_dtype="bfloat16"` (or "float16") runs the model under torch.autocast, weights and features in float32
(`audiozoo.runtime`); `dtype=` (transformers' own argument) instead casts the weights.
"""

from __future__ import annotations

import math
import shutil
import sys
from pathlib import Path

import numpy as np
import soundfile
import torch
from transformers import BatchFeature
from transformers.pipelines import PIPELINE_REGISTRY, AudioClassificationPipeline

from ..audio.io import LibsndfileDecodeError
from ..runtime import autocast, check_device, default_batch_size, resolve_dtype
from .audio_input import decode_audio_input, is_url, minimum_samples, name_list_items, unwrap


def _parent_handles(audio) -> bool:
    """Inputs the parent decodes and `decode_audio_input` does not: URLs (the parent fetches them) and torchcodec
    decoders. The parent's own test for torchcodec, so that nothing is imported here."""
    if is_url(audio):
        return True
    torchcodec = sys.modules.get("torchcodec")
    if torchcodec is not None and isinstance(audio, torchcodec.decoders.AudioDecoder):
        return True
    return False


def _ffmpeg_format(audio) -> bool:
    """A file libsndfile could not read, whose extension is none of its formats, where the ffmpeg binary that the
    parent runs is installed (m4a, aac, webm, ...): the parent decoded these before audiozoo was imported."""
    if not isinstance(audio, (str, Path)) or shutil.which("ffmpeg") is None:
        return False
    known = {name.lower() for name in soundfile.available_formats()} | {"aif", "aifc", "oga", "opus"}
    return Path(audio).suffix.lower().lstrip(".") not in known


def split_windows(waveform: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Samples -> ([W, window] windows, the last zero-padded; [W] samples of audio in each window)."""
    count = max(1, math.ceil(waveform.size / window))
    windows = np.zeros((count, window), dtype=np.float32)
    windows.reshape(-1)[: waveform.size] = waveform
    audio = np.minimum(window, waveform.size - window * np.arange(count)).astype(np.float32)
    return windows, audio


def aggregate_windows(window_logits: torch.Tensor, window_audio: torch.Tensor, function_to_apply: str) -> torch.Tensor:
    """[W, C] clip logits of a clip's windows -> [C] clip scores (see the module docstring): sigmoid -> maximum
    probability; softmax -> mean probability, none -> mean logit, each window weighted by its audio."""
    window_logits = window_logits.float()
    if function_to_apply == "sigmoid":
        return window_logits.sigmoid().amax(dim=0)
    values = window_logits.softmax(dim=-1) if function_to_apply == "softmax" else window_logits
    weights = window_audio.float() / window_audio.float().sum()
    return (values * weights[:, None]).sum(dim=0)


class AudiozooAudioClassificationPipeline(AudioClassificationPipeline):
    """Audio classification with file decoding (soundfile), down-mixing and resampling (soxr) built in, and clips
    longer than a fixed-window model's window classified window by window (see the module docstring)."""

    def __init__(self, *args, **kwargs):
        # before the parent moves the model there: a device this machine lacks is one clear error, not torch's
        check_device(kwargs.get("device"))
        super().__init__(*args, **kwargs)

    def _feature_device(self):
        """Where `preprocess` computes features: on the model's accelerator (one batched pass there) unless this
        is a DataLoader worker process (`num_workers`), which must not touch CUDA; else on the CPU."""
        if self.device.type == "cpu" or torch.utils.data.get_worker_info() is not None:
            return None
        return self.device

    def __call__(self, inputs, **kwargs):
        if self._window_samples() is not None:
            # files hold different numbers of windows: one file at a time, its windows batched by chunk_batch_size
            batch_size = kwargs.get("batch_size") or getattr(self, "_batch_size", None)
            if batch_size not in (None, 1):
                kwargs.setdefault("chunk_batch_size", batch_size)
            kwargs["batch_size"] = 1
        return super().__call__(name_list_items(inputs), **kwargs)

    def _sanitize_parameters(self, top_k=None, function_to_apply=None, sampling_rate=None, allow_truncated=None,
                             chunk_batch_size=None, autocast_dtype=None, **kwargs):
        preprocess_params, forward_params, postprocess_params = super()._sanitize_parameters(
            top_k=top_k, function_to_apply=function_to_apply, **kwargs
        )
        # as the parent, None means every class; clamped in `postprocess` to the classes the model outputs (the
        # parent clamps to config.num_labels, not the clip classes of a PretrainedSED head with its own weak classes)
        postprocess_params["top_k"] = top_k
        if sampling_rate is not None:
            preprocess_params["sampling_rate"] = sampling_rate
        if allow_truncated is not None:
            preprocess_params["allow_truncated"] = bool(allow_truncated)
        if chunk_batch_size is not None:
            if int(chunk_batch_size) < 1:
                raise ValueError(f"chunk_batch_size must be at least 1, got {chunk_batch_size!r}")
            forward_params["chunk_batch_size"] = int(chunk_batch_size)
        if autocast_dtype is not None:
            resolve_dtype(autocast_dtype)  # an unknown name is an error now, not at the first file
            forward_params["autocast_dtype"] = autocast_dtype
        return preprocess_params, forward_params, postprocess_params

    def _window_samples(self) -> int | None:
        """Samples per model window for fixed-window models, None for the others."""
        seconds = getattr(self.model, "window_seconds", None)
        return None if seconds is None else int(round(seconds * self.feature_extractor.sampling_rate))

    def preprocess(self, inputs, sampling_rate: int | None = None, allow_truncated: bool = False):
        audio, name = unwrap(inputs)
        window = self._window_samples()
        target = self.feature_extractor.sampling_rate
        shortest = minimum_samples(self.feature_extractor)
        if _parent_handles(audio):
            if window is None:
                return super().preprocess(audio)
            waveform = decode_audio_input(self._parent_waveform(audio), target, target, name=name,
                                          minimum_samples=shortest)
        else:
            try:
                waveform = decode_audio_input(audio, target, sampling_rate, allow_truncated=allow_truncated,
                                              name=name, minimum_samples=shortest)
            except LibsndfileDecodeError:
                if not _ffmpeg_format(audio):
                    raise
                if window is None:
                    return super().preprocess(str(audio))
                waveform = decode_audio_input(self._parent_waveform(str(audio)), target, target, name=name,
                                              minimum_samples=shortest)
        if window is not None and waveform.size > window:
            windows, audio_samples = split_windows(waveform, window)
            return {"windows": windows, "window_audio": audio_samples}
        # always return the mask so that items of different lengths can be collated when batch_size > 1
        processed = self.feature_extractor(
            waveform, sampling_rate=target, return_tensors="pt", return_attention_mask=True,
            device=self._feature_device()
        )
        if self.dtype is not None:
            processed = processed.to(dtype=self.dtype)
        return processed

    def _parent_waveform(self, audio) -> np.ndarray:
        """The parent's decoding of what only it reads (URLs, torchcodec decoders, ffmpeg formats), stopped where
        it would compute features, so that a fixed-window model can get the samples in windows."""
        captured = []
        feature_extractor = self.feature_extractor

        class _TakeSamples:
            sampling_rate = feature_extractor.sampling_rate

            def __call__(self, samples, **kwargs):
                captured.append(samples)
                return BatchFeature({})

        self.feature_extractor = _TakeSamples()
        try:
            super().preprocess(audio)
        finally:
            self.feature_extractor = feature_extractor
        return np.asarray(captured[0])

    def _forward(self, model_inputs, chunk_batch_size: int | None = None, autocast_dtype=None):
        with autocast(self.device, autocast_dtype):
            return self._forward_windows(model_inputs, chunk_batch_size)

    def _forward_windows(self, model_inputs, chunk_batch_size: int | None):
        if "windows" not in model_inputs:
            return super()._forward(model_inputs)
        if chunk_batch_size is None:
            chunk_batch_size = default_batch_size(self.model.config.model_type, self.device)
        windows, logits = model_inputs["windows"], []
        for start in range(0, windows.shape[0], chunk_batch_size):
            features = self.feature_extractor(list(windows[start : start + chunk_batch_size]),
                                              sampling_rate=self.feature_extractor.sampling_rate, return_tensors="pt",
                                              device=self.device)
            features = {key: value.to(self.device, dtype=self.dtype if value.is_floating_point() and self.dtype
                                      else value.dtype) for key, value in features.items()}
            logits.append(self.model(**features).logits.float().cpu())
        return {"window_logits": torch.cat(logits), "window_audio": torch.from_numpy(model_inputs["window_audio"])}

    def _default_function(self) -> str:
        """The parent's choice from `config.problem_type`, except that a PretrainedSED head without a problem type
        (converted checkpoints) is multi-label: its clip output is trained with a sigmoid."""
        problem_type = self.model.config.problem_type
        if problem_type is None and getattr(self.model, "uses_sed_head", False):
            return "sigmoid"
        if problem_type == "regression":
            return "none"
        return "sigmoid" if problem_type == "multi_label_classification" else "softmax"

    def postprocess(self, model_outputs, top_k=None, function_to_apply=None):
        function_to_apply = function_to_apply or self._default_function()
        if "window_logits" in model_outputs:
            scores = aggregate_windows(model_outputs["window_logits"], model_outputs["window_audio"],
                                       function_to_apply)
        else:
            scores = aggregate_windows(model_outputs.logits[:1], torch.ones(1), function_to_apply)
        id2label = self.model.config.id2label
        # a PretrainedSED head may have clip classes other than its frame classes, which the config names
        names = (lambda index: id2label[index]) if len(id2label) == scores.numel() else (lambda index: f"LABEL_{index}")
        values, ids = scores.topk(scores.numel() if top_k is None else min(int(top_k), scores.numel()))
        return [{"score": score, "label": names(index)} for score, index in zip(values.tolist(), ids.tolist(),
                                                                                  strict=True)]


def register_audio_classification_pipeline() -> None:
    """Point the "audio-classification" task at our subclass, keeping the task's default model and types."""
    PIPELINE_REGISTRY.supported_tasks["audio-classification"]["impl"] = AudiozooAudioClassificationPipeline
