"""Turn what a pipeline or the CLI is given (paths, bytes, arrays, dicts) into mono float32 at a target rate.

This is the one place where audio is decoded, down-mixed, converted from integer PCM and resampled for
inference; models and feature extractors never do it, and refuse input that is not already right.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import soundfile
import torch

from ..audio.io import AudioDecodeError, load_audio, resample, to_float32, to_mono


def _to_mono(array: np.ndarray) -> np.ndarray:
    """Average the channels of [samples, channels] or [channels, samples] (the shorter axis is channels)."""
    if array.ndim == 2 and array.shape[0] < array.shape[1]:
        array = array.T
    return to_mono(array)


def decode_audio_input(audio, target_sampling_rate: int, sampling_rate: int | None = None) -> np.ndarray:
    """Return mono float32 samples at `target_sampling_rate`.

    Accepted: a file path (str or Path; wav/flac/ogg/mp3 through libsndfile), raw file bytes, a numpy array or
    torch tensor (float, or integer PCM, which is scaled to [-1, 1]; multi-channel is averaged), or a dict
    {"array"|"raw": samples, "sampling_rate": rate} as `datasets` yields. Arrays without a rate are taken to be
    at `sampling_rate` if given, else at the target rate.
    """
    if isinstance(audio, (str, Path)):
        if str(audio).startswith(("http://", "https://")):
            raise ValueError(f"URLs are not fetched: download {audio} first and pass the file path")
        array, _ = load_audio(audio, sampling_rate=target_sampling_rate)
        return array
    if isinstance(audio, (bytes, bytearray)):
        try:
            array, rate = soundfile.read(io.BytesIO(audio), dtype="float32", always_2d=False)
        except (soundfile.LibsndfileError, RuntimeError, TypeError) as error:
            raise AudioDecodeError(f"could not decode the given bytes as audio ({error})") from error
        return _finish(array, rate, target_sampling_rate)
    if isinstance(audio, dict):
        if "sampling_rate" not in audio or not ("array" in audio or "raw" in audio):
            raise ValueError(
                "an audio dict needs 'array' (or 'raw') samples and their 'sampling_rate', got keys "
                f"{sorted(audio)}"
            )
        samples = audio["array"] if "array" in audio else audio["raw"]
        return _finish(samples, int(audio["sampling_rate"]), target_sampling_rate)
    if isinstance(audio, (np.ndarray, torch.Tensor)):
        return _finish(audio, sampling_rate or target_sampling_rate, target_sampling_rate)
    raise TypeError(
        f"cannot read audio from a {type(audio).__name__}; pass a file path, bytes, an array or "
        "{'array': ..., 'sampling_rate': ...}"
    )


def _finish(samples, rate: int, target_sampling_rate: int) -> np.ndarray:
    if isinstance(samples, torch.Tensor):
        samples = samples.detach().cpu().numpy()
    array = _to_mono(to_float32(np.asarray(samples)))
    if rate != target_sampling_rate:
        array = resample(array, rate, target_sampling_rate)
    return np.ascontiguousarray(array, dtype=np.float32)
