"""Turn what a pipeline or the CLI is given (paths, bytes, arrays, dicts) into mono float32 at a target rate.

This is the one place where audio is decoded, down-mixed, converted from integer PCM and resampled for
inference; models and feature extractors never do it, and refuse input that is not already right.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..audio.io import (
    check_finite,
    check_float_range,
    decode_audio_bytes,
    load_audio,
    resample,
    to_float32,
    to_mono,
)


def is_url(audio) -> bool:
    return isinstance(audio, str) and audio.startswith(("http://", "https://"))


class NamedInput:
    """One item of a list given to a pipeline, with a name for messages ("pipeline input 3")."""

    __slots__ = ("value", "name")

    def __init__(self, value, name: str):
        self.value, self.name = value, name


def name_list_items(inputs):
    """Tag the items of a list input with their index, so that a bad item is named in the error."""
    if isinstance(inputs, list) and not all(isinstance(item, (int, float)) for item in inputs):
        return [NamedInput(item, f"pipeline input {index}") for index, item in enumerate(inputs)]
    return inputs


def unwrap(inputs) -> tuple[object, str | None]:
    return (inputs.value, inputs.name) if isinstance(inputs, NamedInput) else (inputs, None)


def minimum_samples(feature_extractor) -> int | None:
    """Our feature extractors say how short a clip their model takes; others (transformers' own) do not."""
    return getattr(feature_extractor, "minimum_samples", None)


def decode_audio_input(
    audio,
    target_sampling_rate: int,
    sampling_rate: int | None = None,
    *,
    allow_truncated: bool = False,
    name: str | None = None,
    minimum_samples: int | None = None,
) -> np.ndarray:
    """Return mono float32 samples at `target_sampling_rate`.

    Accepted: a file path (str or Path; wav/flac/ogg/mp3 through libsndfile), raw file bytes, a numpy array or
    torch tensor (float, or integer PCM, which is scaled to [-1, 1]; multi-channel is averaged), or a dict
    {"array"|"raw": samples, "sampling_rate": rate} as `datasets` yields. Arrays without a rate are taken to be
    at `sampling_rate` if given, else at the target rate.

    Refused, with the source named (the path, else `name`, else "the array"): truncated files (unless
    `allow_truncated`), NaN/Inf samples (counted and placed at the source's own rate, before resampling), float
    samples far outside [-1, 1] (above `MAX_FLOAT_PEAK`: integer PCM stored as float), and, with
    `minimum_samples` (at the target rate), audio shorter than that.
    """
    if isinstance(audio, (str, Path)):
        if is_url(audio):
            raise ValueError(f"URLs are not fetched: download {audio} first and pass the file path")
        samples, rate = load_audio(audio, mono=False, allow_truncated=allow_truncated)
        source = str(audio)
        check_float_range(samples, source)
        return _finish(to_mono(samples), rate, target_sampling_rate, source, minimum_samples)
    if isinstance(audio, (bytes, bytearray)):
        source = name or "the given bytes"
        samples, rate = decode_audio_bytes(bytes(audio), allow_truncated=allow_truncated, source=source)
        check_float_range(samples, source)
        return _finish(to_mono(samples), rate, target_sampling_rate, source, minimum_samples)
    if isinstance(audio, dict):
        if "sampling_rate" not in audio or not ("array" in audio or "raw" in audio):
            raise ValueError(
                "an audio dict needs 'array' (or 'raw') samples and their 'sampling_rate', got keys "
                f"{sorted(audio)}"
            )
        samples = audio["array"] if "array" in audio else audio["raw"]
        # `datasets` puts the file name under "path"
        source = name or (str(audio["path"]) if audio.get("path") else "the audio dict")
        return _from_array(samples, int(audio["sampling_rate"]), target_sampling_rate, source, minimum_samples)
    if isinstance(audio, (np.ndarray, torch.Tensor)):
        rate = sampling_rate or target_sampling_rate
        return _from_array(audio, rate, target_sampling_rate, name or "the array", minimum_samples)
    raise TypeError(
        f"cannot read audio from a {type(audio).__name__}; pass a file path, bytes, an array or "
        "{'array': ..., 'sampling_rate': ...}"
    )


def _from_array(samples, rate: int, target_sampling_rate: int, source: str, minimum_samples: int | None):
    if isinstance(samples, torch.Tensor):
        samples = samples.detach().cpu().numpy()
    samples = np.asarray(samples)
    is_float = np.issubdtype(samples.dtype, np.floating)
    samples = to_float32(samples)
    if samples.ndim == 2 and samples.shape[0] < samples.shape[1]:
        samples = samples.T  # [channels, samples] -> [samples, channels]
    check_finite(samples, rate, source)
    if is_float:  # integer PCM has just been scaled into [-1, 1]
        check_float_range(samples, source)
    return _finish(to_mono(samples), rate, target_sampling_rate, source, minimum_samples)


def _finish(array: np.ndarray, rate: int, target_sampling_rate: int, source: str,
            minimum_samples: int | None) -> np.ndarray:
    """Checked mono samples at the source rate -> resampled, length-checked, float32, contiguous."""
    if array.size == 0:
        raise ValueError(f"{source} is empty (no samples)")
    source_frames = array.size
    if rate != target_sampling_rate:
        array = resample(array, rate, target_sampling_rate)
    if minimum_samples is not None and array.size < minimum_samples:
        raise ValueError(
            f"{source} is too short: {source_frames} samples ({source_frames / rate:.4f} s at {rate} Hz); the model "
            f"needs at least {minimum_samples} samples ({minimum_samples / target_sampling_rate:.4f} s at "
            f"{target_sampling_rate} Hz)"
        )
    return np.ascontiguousarray(array, dtype=np.float32)
