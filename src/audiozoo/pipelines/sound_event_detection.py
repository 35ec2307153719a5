"""`pipeline("sound-event-detection")`: events with onsets and offsets from audio of any length.

As the original PretrainedSED inference script: the audio (decoded with soundfile, resampled with soxr, mono)
is cut into windows of the model's length (`sed_head.window_seconds`, 10 s), the last one zero-padded; frame
probabilities of consecutive windows are concatenated; a median filter (9 frames by default, per class if
given) smooths them; frames above a threshold form events, whose offsets are clipped to the audio's length.
Unlike the original, which runs one window at a time, the windows of a file go through the model in batches
of `chunk_batch_size`, and on an x86 CPU the model's linear layers run as oneDNN's (`_OneDnnLinear`: AVX-512 where
the CPU has it, which torch's default MKL sgemm does not use on AMD CPUs; outputs agree to about 1e-6).

Long audio streams: a file (path or bytes) is decoded and resampled block by block (`audio.stream.AudioStream`),
each batch of windows goes through the model as soon as its samples are there, the median filter and the event
extraction run on the frames as they come (`sed.postprocessing.MedianFilterStream`, `EventStream`), and only what
they still need is kept; events are final, and passed to `on_event`, as soon as no later frame can change them.
Memory does not grow with the length of the audio beyond the output (the events, and the frame probabilities when
`return_frame_probabilities=True`). The results are those of decoding everything first and post-processing all
frames at once (`stream=False`, the previous implementation, kept for comparison): the same samples (soxr's
streaming resampler gives the one-shot result bit for bit), the same batches, the same medians.
"""

from __future__ import annotations

import contextlib
import math
import platform
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.overrides import TorchFunctionMode
from transformers import Pipeline
from transformers.pipelines import PIPELINE_REGISTRY

from ..audio.stream import AudioStream
from ..sed.postprocessing import (
    EventStream,
    MedianFilterStream,
    median_filter_probabilities,
    probabilities_to_events,
)
from ..layers.sed_head import SedHeadSettings
from ..runtime import autocast, check_device, default_batch_size, is_compiled, resolve_dtype
from .audio_input import decode_audio_input, is_url, minimum_samples, name_list_items, unwrap


def _window_seconds(config) -> float:
    return SedHeadSettings.from_dict(getattr(config, "sed_head", None)).window_seconds


class _Streamed:
    """The result of a streamed input, opaque to Pipeline.forward (which would copy every event dict of a dict)."""

    __slots__ = ("value",)

    def __init__(self, value: dict):
        self.value = value


class _OneDnnLinear(TorchFunctionMode):
    """Inside it, `F.linear` on float32 CPU tensors without autograd runs as oneDNN's linear
    (`torch.ops.mkldnn._linear_pointwise`, the operator torch.compile's oneDNN fusions call) instead of MKL's
    sgemm: the same products and sums in another order (outputs agree to about 1e-6 relative).

    Why: MKL takes its AVX2 kernels on x86 CPUs that are not Intel's, oneDNN takes AVX-512 wherever the CPU has it.
    Measured on an AMD Zen 5 (float32): 2000 x 768 -> 3072 at 90 GFLOP/s per core with MKL, 190 with oneDNN; one
    thread, 768 -> 768 on 250 rows 3.4 ms vs 1.5 ms, on 4 rows 111 vs 92 us, on one row 37 vs 48 us. The linear
    layers are 70-85% of a ViT student's time on the CPU. Only on x86-64 with oneDNN, and only when the operator
    exists and agrees with `F.linear` on a probe (else `available()` is False and nothing changes); autocast, other
    dtypes, autograd and inputs of fewer than `MIN_ROWS` rows keep `F.linear`.
    """

    MIN_ROWS = 4
    _available: bool | None = None

    @classmethod
    def available(cls) -> bool:
        if cls._available is None:
            cls._available = cls._probe()
        return cls._available

    @staticmethod
    def _probe() -> bool:
        if platform.machine().lower() not in ("x86_64", "amd64") or not torch.backends.mkldnn.is_available():
            return False
        try:
            generator = torch.Generator().manual_seed(0)
            inputs, weight, bias = (torch.randn(shape, generator=generator) for shape in ((2, 64, 48), (40, 48), (40,)))
            with torch.inference_mode():
                fast = torch.ops.mkldnn._linear_pointwise(inputs, weight, bias, "none", [], "")
                expected = torch.nn.functional.linear(inputs, weight, bias)
                return fast.shape == expected.shape and torch.allclose(fast, expected, rtol=1e-4, atol=1e-5)
        except (AttributeError, RuntimeError, NotImplementedError):
            return False

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.nn.functional.linear and len(args) >= 2 and not torch.is_grad_enabled():
            inputs, weight = args[0], args[1]
            bias = args[2] if len(args) > 2 else kwargs.get("bias")
            if (self._fits(inputs) and inputs.dim() >= 2 and inputs.numel() >= self.MIN_ROWS * inputs.shape[-1]
                    and self._fits(weight) and weight.dim() == 2 and (bias is None or self._fits(bias))
                    and not torch.is_autocast_enabled("cpu")):
                return torch.ops.mkldnn._linear_pointwise(inputs, weight, bias, "none", [], "")
        return func(*args, **kwargs)

    @staticmethod
    def _fits(tensor) -> bool:
        """A plain (or Parameter) float32 CPU tensor."""
        return (type(tensor) in (torch.Tensor, torch.nn.Parameter) and tensor.dtype == torch.float32
                and tensor.device.type == "cpu")


def _frames_of(duration: float, frame_duration: float) -> int:
    """Frames that start before the end of `duration` seconds (later ones hold only padding)."""
    return max(1, math.ceil(duration / frame_duration - 1e-9))


class SoundEventDetectionPipeline(Pipeline):
    """Sound-event detection with any `...ForAudioFrameClassification` model that carries a PretrainedSED head.

    Call arguments:
        threshold: one probability (default 0.5) or one per class.
        thresholds: several global thresholds at once; the result then maps each threshold to its events.
        median_window: frames of the median filter (default 9 = 360 ms at 40 ms frames); one per class allowed;
            1 disables it.
        return_frame_probabilities: also return the filtered frame probabilities [T, C] and their frame rate
            (they grow with the length of the audio; without them memory does not).
        sampling_rate: rate of array input (files carry their own).
        allow_truncated: use what is there of a file shorter than its header declares (else an error).
        chunk_batch_size: windows per forward pass (default: `audiozoo.runtime.default_batch_size` for the
            model's family and device: 1 for frame-MobileNet on the CPU, 8 for the transformers, 32 on a GPU).
        autocast_dtype: "bfloat16" or "float16" runs the model under torch.autocast (weights and front end stay
            float32; see `audiozoo.runtime`); default float32.
        on_event: called with each event as soon as it is final, in the order of the result (with `thresholds`:
            `on_event(event, threshold)`); for printing or writing events of a long recording while it runs.
        on_audio: called with each block of the decoded audio (mono float32 at the model's rate), in order
            (e.g. to draw its spectrogram in the same pass).
        stream: False decodes the whole input first and post-processes all frames at once (the previous
            implementation: same results, memory growing with the length); default True.
    Returns, per input, a list of `{"label", "onset", "offset", "score"}` (seconds; score = max probability),
    or a dict with "events" (or "events_by_threshold"), "frame_probabilities", "frame_rate", "labels",
    "duration" when frame probabilities are requested.
    """

    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = True
    _load_tokenizer = False
    _autocast_dtype = None

    def __init__(self, *args, **kwargs):
        # before the parent moves the model there: a device this machine lacks is one clear error, not torch's
        check_device(kwargs.get("device"))
        super().__init__(*args, **kwargs)
        if getattr(self.model.config, "sed_head", None) is None and not hasattr(self.model, "sed_head"):
            raise ValueError(
                f"{type(self.model).__name__} has no PretrainedSED prediction head (config.sed_head is None); "
                "sound-event detection needs a frame classifier converted from PretrainedSED or trained with one"
            )

    def _sanitize_parameters(self, threshold=None, thresholds=None, median_window=None, return_frame_probabilities=None,
                             sampling_rate=None, chunk_batch_size=None, allow_truncated=None, on_event=None,
                             on_audio=None, stream=None, autocast_dtype=None, **kwargs):
        preprocess_params = {} if sampling_rate is None else {"sampling_rate": sampling_rate}
        if allow_truncated is not None:
            preprocess_params["allow_truncated"] = bool(allow_truncated)
        if stream is not None:
            preprocess_params["stream"] = bool(stream)
        forward_params = {} if chunk_batch_size is None else {"chunk_batch_size": int(chunk_batch_size)}
        if chunk_batch_size is not None and int(chunk_batch_size) < 1:
            raise ValueError(f"chunk_batch_size must be at least 1, got {chunk_batch_size!r}")
        if on_audio is not None:
            forward_params["on_audio"] = on_audio
        if autocast_dtype is not None:
            resolve_dtype(autocast_dtype)  # an unknown name is an error now, not at the first file
            forward_params["autocast_dtype"] = autocast_dtype
        postprocess_params = {}
        if threshold is not None and thresholds is not None:
            raise ValueError("pass either threshold (one, or one per class) or thresholds (several), not both")
        if threshold is not None:
            postprocess_params["threshold"] = threshold
        if thresholds is not None:
            if isinstance(thresholds, (int, float)) or not len(thresholds):
                raise ValueError(f"thresholds must be a non-empty list of probabilities, got {thresholds!r}")
            postprocess_params["thresholds"] = [float(value) for value in thresholds]
        if median_window is not None:
            postprocess_params["median_window"] = median_window
        if return_frame_probabilities is not None:
            postprocess_params["return_frame_probabilities"] = bool(return_frame_probabilities)
        if on_event is not None:
            postprocess_params["on_event"] = on_event
        # streaming post-processes while the model runs: the forward pass takes the post-processing settings too
        forward_params["post"] = dict(postprocess_params)
        return preprocess_params, forward_params, postprocess_params

    def __call__(self, inputs, **kwargs):
        if kwargs.get("batch_size", 1) not in (None, 1):
            # files hold different numbers of windows; windows of a file are batched with chunk_batch_size
            kwargs.setdefault("chunk_batch_size", kwargs["batch_size"])
        kwargs["batch_size"] = 1
        return super().__call__(name_list_items(inputs), **kwargs)

    def preprocess(self, inputs, sampling_rate: int | None = None, allow_truncated: bool = False,
                   stream: bool = True) -> dict:
        rate = self.feature_extractor.sampling_rate
        audio, name = unwrap(inputs)
        # the windows are zero-padded to the model's length, but a clip shorter than the model's minimum input
        # is refused as the classification pipeline refuses it (it would give events of ~0 s)
        minimum = minimum_samples(self.feature_extractor) or 1
        if stream and isinstance(audio, (str, Path, bytes, bytearray)) and not is_url(audio):
            # checked now (missing, undecodable, truncated); decoded block by block in _forward
            return {"stream": AudioStream(audio, rate, allow_truncated=allow_truncated, name=name,
                                          minimum_samples=minimum)}
        waveform = decode_audio_input(audio, rate, sampling_rate, allow_truncated=allow_truncated, name=name,
                                      minimum_samples=minimum)
        if stream:  # arrays are in memory already: only the windows and the post-processing stream
            return {"waveform": waveform}
        window = int(round(_window_seconds(self.model.config) * rate))
        count = max(1, math.ceil(waveform.size / window))
        padded = np.zeros(count * window, dtype=np.float32)
        padded[: waveform.size] = waveform
        return {"windows": torch.from_numpy(padded.reshape(count, window)), "duration": waveform.size / rate}

    def _probabilities(self, windows: torch.Tensor) -> torch.Tensor:
        """[k, window samples] -> [k, frames, classes] float32 on the CPU: one forward pass (the front end runs on
        the model's device, as it did when the whole input was moved there)."""
        features = self.feature_extractor(list(windows), sampling_rate=self.feature_extractor.sampling_rate,
                                          return_tensors="pt", device=self.device)
        features = {key: value.to(self.device, dtype=self.dtype or value.dtype) for key, value in features.items()}
        fast = (self.device.type == "cpu" and resolve_dtype(self._autocast_dtype) == torch.float32
                and not is_compiled(self.model) and _OneDnnLinear.available())
        with autocast(self.device, self._autocast_dtype), (_OneDnnLinear() if fast else contextlib.nullcontext()):
            return self.model(**features).probabilities.float().cpu()

    def _forward(self, model_inputs: dict, chunk_batch_size: int | None = None, post: dict | None = None,
                 on_audio: Callable[[np.ndarray], object] | None = None, autocast_dtype=None) -> dict:
        self._autocast_dtype = autocast_dtype
        if chunk_batch_size is None:
            chunk_batch_size = default_batch_size(self.model.config.model_type, self.device)
        if "windows" not in model_inputs:
            if "stream" in model_inputs:
                blocks = model_inputs["stream"]
            else:
                waveform = model_inputs["waveform"]
                step = 1 << 20
                blocks = (waveform[start : start + step] for start in range(0, waveform.size, step))
            return {"result": _Streamed(self._stream(blocks, chunk_batch_size, post or {}, on_audio))}
        windows = model_inputs["windows"]
        if on_audio is not None:
            on_audio(windows.reshape(-1)[: round(model_inputs["duration"] * self.feature_extractor.sampling_rate)]
                     .cpu().numpy())
        probabilities = [self._probabilities(windows[start : start + chunk_batch_size])
                         for start in range(0, windows.shape[0], chunk_batch_size)]
        # [windows, frames, classes] -> one time axis
        frames = torch.cat(probabilities, dim=0)
        return {"probabilities": frames.reshape(-1, frames.shape[-1]), "duration": model_inputs["duration"]}

    def _stream(self, blocks: Iterable[np.ndarray], chunk_batch_size: int, post: dict,
                on_audio: Callable[[np.ndarray], object] | None) -> dict:
        """Windows -> model -> median filter -> events while the audio is read; keeps what post-processing needs."""
        rate = self.feature_extractor.sampling_rate
        settings = SedHeadSettings.from_dict(getattr(self.model.config, "sed_head", None))
        frame_duration = 1.0 / settings.frame_rate
        window = int(round(settings.window_seconds * rate))
        labels = [self.model.config.id2label[index] for index in range(len(self.model.config.id2label))]
        thresholds = post.get("thresholds")
        on_event = post.get("on_event")
        if thresholds is None:
            events = {None: EventStream(labels, frame_duration, post.get("threshold", 0.5), on_event=on_event)}
        else:
            events = {value: EventStream(labels, frame_duration, value, on_event=None if on_event is None else
                                         (lambda event, value=value: on_event(event, value)))
                      for value in thresholds}
        median = MedianFilterStream(len(labels), post.get("median_window", 9))
        kept = [] if post.get("return_frame_probabilities") else None
        found: dict = {key: [] for key in events}

        def smoothed(frames: np.ndarray) -> None:
            if frames.shape[0]:
                if kept is not None:
                    kept.append(frames)
                for key, stream in events.items():
                    found[key].extend(stream.push(frames))

        batch_samples = window * chunk_batch_size
        pending: list[np.ndarray] = []
        pending_size = consumed = pushed = 0
        held = np.zeros((0, len(labels)), dtype=np.float32)  # frames not yet known to lie before the end

        def take(size: int) -> np.ndarray:
            nonlocal pending, pending_size
            joined = np.concatenate(pending) if len(pending) > 1 else pending[0]
            pending = [joined[size:]] if joined.size > size else []
            pending_size -= min(size, joined.size)
            return joined[:size]

        def run(samples: np.ndarray) -> np.ndarray:
            count = max(1, math.ceil(samples.size / window))
            padded = np.zeros(count * window, dtype=np.float32)
            padded[: samples.size] = samples
            probabilities = torch.cat([self._probabilities(part) for part in
                                       torch.from_numpy(padded.reshape(count, window)).split(chunk_batch_size)])
            return probabilities.reshape(-1, probabilities.shape[-1]).numpy()

        for block in blocks:
            if on_audio is not None:
                on_audio(block)
            pending.append(block)
            pending_size += block.size
            while pending_size > batch_samples:  # more audio follows: these windows are full and not the last
                frames = np.concatenate([held, run(take(batch_samples))])
                consumed += batch_samples
                # the audio has at least consumed + 1 samples, hence at least this many frames
                real = min(_frames_of((consumed + 1) / rate, frame_duration) - pushed, frames.shape[0])
                smoothed(median.push(frames[:real]))
                pushed, held = pushed + real, frames[real:]
        total = consumed + pending_size
        if total == 0:
            raise ValueError("the audio is empty (no samples)")
        duration = total / rate
        frames = np.concatenate([held, run(take(pending_size) if pending_size else np.zeros(0, np.float32))])
        smoothed(median.push(frames[: _frames_of(duration, frame_duration) - pushed]))
        smoothed(median.finish())
        for key, stream in events.items():
            found[key].extend(stream.finish(duration))
        return {
            "events": found[None] if thresholds is None else found,
            "frame_probabilities": None if kept is None else (np.concatenate(kept) if kept else
                                                              np.zeros((0, len(labels)), np.float32)),
            "duration": duration,
            "labels": labels,
            "frame_rate": settings.frame_rate,
        }

    def postprocess(self, model_outputs: dict, threshold: float | Sequence[float] = 0.5,
                    thresholds: Sequence[float] | None = None, median_window: int | Sequence[int] = 9,
                    return_frame_probabilities: bool = False, on_event: Callable | None = None):
        several = thresholds is not None
        if "result" in model_outputs:  # streamed: post-processed already
            result = model_outputs["result"].value
            events, smoothed, duration = result["events"], result["frame_probabilities"], result["duration"]
            labels, frame_rate = result["labels"], result["frame_rate"]
        else:
            settings = SedHeadSettings.from_dict(getattr(self.model.config, "sed_head", None))
            frame_duration, frame_rate = 1.0 / settings.frame_rate, settings.frame_rate
            duration = float(model_outputs["duration"])
            probabilities = model_outputs["probabilities"].numpy()
            # frames that start after the audio hold only padding
            probabilities = probabilities[: _frames_of(duration, frame_duration)]
            smoothed = median_filter_probabilities(probabilities, median_window)
            labels = [self.model.config.id2label[index] for index in range(smoothed.shape[1])]
            if several:
                events = {value: probabilities_to_events(smoothed, labels, frame_duration, value, duration)
                          for value in thresholds}
            else:
                events = probabilities_to_events(smoothed, labels, frame_duration, threshold, duration)
            if on_event is not None:
                for value, group in (events.items() if several else [(None, events)]):
                    for event in group:
                        if value is None:
                            on_event(event)
                        else:
                            on_event(event, value)
        if not return_frame_probabilities:
            return events
        return {
            "events_by_threshold" if several else "events": events,
            "frame_probabilities": smoothed,
            "frame_rate": frame_rate,
            "labels": labels,
            "duration": duration,
        }


def register_sound_event_detection_pipeline() -> None:
    """Register the "sound-event-detection" task (PyTorch frame classifiers)."""
    from transformers import AutoModelForAudioFrameClassification

    PIPELINE_REGISTRY.register_pipeline(
        "sound-event-detection",
        pipeline_class=SoundEventDetectionPipeline,
        pt_model=AutoModelForAudioFrameClassification,
        type="audio",
    )


def per_class_values(values: Mapping[str, float] | float | int, labels: Sequence[str], default: float) -> object:
    """A {label: value} mapping -> one value per class (others get `default`); numbers pass through.

    Used for per-class thresholds and median windows given by name (e.g. on the command line)."""
    if not isinstance(values, Mapping):
        return values
    unknown = sorted(set(values) - set(labels))
    if unknown:
        raise ValueError(f"unknown class names {unknown[:5]}; the model's classes are e.g. {list(labels)[:5]}")
    return [values.get(label, default) for label in labels]


__all__ = ["SoundEventDetectionPipeline", "per_class_values", "register_sound_event_detection_pipeline"]
