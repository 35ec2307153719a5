"""`pipeline("sound-event-detection")`: events with onsets and offsets from audio of any length.

As the original PretrainedSED inference script: the audio (decoded with soundfile, resampled with soxr, mono)
is cut into windows of the model's length (`sed_head.window_seconds`, 10 s), the last one zero-padded; frame
probabilities of consecutive windows are concatenated; a median filter (9 frames by default, per class if
given) smooths them; frames above a threshold form events, whose offsets are clipped to the audio's length.
Unlike the original, which runs one window at a time, the windows of a file go through the model in batches
of `chunk_batch_size`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from transformers import Pipeline
from transformers.pipelines import PIPELINE_REGISTRY

from ..sed.postprocessing import median_filter_probabilities, probabilities_to_events
from ..layers.sed_head import SedHeadSettings
from .audio_input import decode_audio_input, minimum_samples, name_list_items, unwrap


def _window_seconds(config) -> float:
    return SedHeadSettings.from_dict(getattr(config, "sed_head", None)).window_seconds


class SoundEventDetectionPipeline(Pipeline):
    """Sound-event detection with any `...ForAudioFrameClassification` model that carries a PretrainedSED head.

    Call arguments:
        threshold: one probability (default 0.5) or one per class.
        thresholds: several global thresholds at once; the result then maps each threshold to its events.
        median_window: frames of the median filter (default 9 = 360 ms at 40 ms frames); one per class allowed;
            1 disables it.
        return_frame_probabilities: also return the filtered frame probabilities [T, C] and their frame rate.
        sampling_rate: rate of array input (files carry their own).
        allow_truncated: use what is there of a file shorter than its header declares (else an error).
        chunk_batch_size: windows per forward pass (default 8).
    Returns, per input, a list of `{"label", "onset", "offset", "score"}` (seconds; score = max probability),
    or a dict with "events" (or "events_by_threshold"), "frame_probabilities", "frame_rate", "labels",
    "duration" when frame probabilities are requested.
    """

    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = True
    _load_tokenizer = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if getattr(self.model.config, "sed_head", None) is None and not hasattr(self.model, "sed_head"):
            raise ValueError(
                f"{type(self.model).__name__} has no PretrainedSED prediction head (config.sed_head is None); "
                "sound-event detection needs a frame classifier converted from PretrainedSED or trained with one"
            )

    def _sanitize_parameters(self, threshold=None, thresholds=None, median_window=None, return_frame_probabilities=None,
                             sampling_rate=None, chunk_batch_size=None, allow_truncated=None, **kwargs):
        preprocess_params = {} if sampling_rate is None else {"sampling_rate": sampling_rate}
        if allow_truncated is not None:
            preprocess_params["allow_truncated"] = bool(allow_truncated)
        forward_params = {} if chunk_batch_size is None else {"chunk_batch_size": int(chunk_batch_size)}
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
        return preprocess_params, forward_params, postprocess_params

    def __call__(self, inputs, **kwargs):
        if kwargs.get("batch_size", 1) not in (None, 1):
            # files hold different numbers of windows; windows of a file are batched with chunk_batch_size
            kwargs.setdefault("chunk_batch_size", kwargs["batch_size"])
        kwargs["batch_size"] = 1
        return super().__call__(name_list_items(inputs), **kwargs)

    def preprocess(self, inputs, sampling_rate: int | None = None, allow_truncated: bool = False) -> dict:
        rate = self.feature_extractor.sampling_rate
        audio, name = unwrap(inputs)
        # the windows are zero-padded to the model's length, but a clip shorter than the model's minimum input
        # is refused as the classification pipeline refuses it (it would give events of ~0 s)
        waveform = decode_audio_input(audio, rate, sampling_rate, allow_truncated=allow_truncated, name=name,
                                      minimum_samples=minimum_samples(self.feature_extractor) or 1)
        window = int(round(_window_seconds(self.model.config) * rate))
        count = max(1, math.ceil(waveform.size / window))
        padded = np.zeros(count * window, dtype=np.float32)
        padded[: waveform.size] = waveform
        return {"windows": torch.from_numpy(padded.reshape(count, window)), "duration": waveform.size / rate}

    def _forward(self, model_inputs: dict, chunk_batch_size: int = 8) -> dict:
        windows = model_inputs["windows"]
        probabilities = []
        for start in range(0, windows.shape[0], chunk_batch_size):
            batch = list(windows[start : start + chunk_batch_size])
            features = self.feature_extractor(batch, sampling_rate=self.feature_extractor.sampling_rate,
                                              return_tensors="pt")
            features = {key: value.to(self.device, dtype=self.dtype or value.dtype) for key, value in features.items()}
            output = self.model(**features)
            probabilities.append(output.probabilities.float().cpu())
        # [windows, frames, classes] -> one time axis
        frames = torch.cat(probabilities, dim=0)
        return {"probabilities": frames.reshape(-1, frames.shape[-1]), "duration": model_inputs["duration"]}

    def postprocess(self, model_outputs: dict, threshold: float | Sequence[float] = 0.5,
                    thresholds: Sequence[float] | None = None, median_window: int | Sequence[int] = 9,
                    return_frame_probabilities: bool = False):
        settings = SedHeadSettings.from_dict(getattr(self.model.config, "sed_head", None))
        frame_duration = 1.0 / settings.frame_rate
        duration = float(model_outputs["duration"])
        probabilities = model_outputs["probabilities"].numpy()
        # frames that start after the audio hold only padding
        probabilities = probabilities[: max(1, math.ceil(duration / frame_duration - 1e-9))]
        smoothed = median_filter_probabilities(probabilities, median_window)
        labels = [self.model.config.id2label[index] for index in range(smoothed.shape[1])]
        several = thresholds is not None
        if several:
            events = {value: probabilities_to_events(smoothed, labels, frame_duration, value, duration)
                      for value in thresholds}
        else:
            events = probabilities_to_events(smoothed, labels, frame_duration, threshold, duration)
        if not return_frame_probabilities:
            return events
        return {
            "events_by_threshold" if several else "events": events,
            "frame_probabilities": smoothed,
            "frame_rate": settings.frame_rate,
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
