"""Audio files and arrays for the CLI and pipelines: load, convert to float, down-mix, resample.

Models and feature extractors never call this: they take mono float waveforms at their own rate and refuse
anything else.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile
import soxr


class AudioDecodeError(ValueError):
    """A file or byte string could not be decoded as audio."""


def load_audio(path: str | Path, sampling_rate: int | None = None, mono: bool = True) -> tuple[np.ndarray, int]:
    """Read a file with libsndfile (wav, flac, ogg/vorbis/opus, mp3, ...) -> (float32 samples, rate).

    Multi-channel audio is averaged to mono when `mono` (else [samples, channels]); with `sampling_rate` the
    samples are resampled to it (soxr, high quality).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"audio file not found: {path}")
    try:
        samples, rate = soundfile.read(path, dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as error:
        raise AudioDecodeError(
            f"could not decode {path} as audio ({error}); supported are the formats of libsndfile "
            f"{soundfile.__libsndfile_version__} (wav, flac, ogg, mp3, ...)"
        ) from error
    if samples.shape[0] == 0:
        raise AudioDecodeError(f"{path} contains no samples")
    if mono:
        samples = to_mono(samples)
    if sampling_rate is not None and sampling_rate != rate:
        samples, rate = resample(samples, rate, sampling_rate), sampling_rate
    return samples, rate


def to_float32(array: np.ndarray) -> np.ndarray:
    """Integer PCM -> float32 in [-1, 1] (int16 / 32768, int32 / 2**31, uint8 centred at 128); floats -> float32."""
    array = np.asarray(array)
    if array.dtype == np.int16:
        return array.astype(np.float32) / 32768.0
    if array.dtype == np.int32:
        return (array.astype(np.float64) / 2**31).astype(np.float32)
    if array.dtype == np.uint8:
        return (array.astype(np.float32) - 128.0) / 128.0
    if np.issubdtype(array.dtype, np.floating):
        return array.astype(np.float32, copy=False)
    raise TypeError(f"cannot read samples of dtype {array.dtype}; expected float or int16/int32/uint8 PCM")


def to_mono(array: np.ndarray) -> np.ndarray:
    """Average the channels of [samples, channels] (soundfile's layout); 1-D input is returned as it is."""
    if array.ndim == 1:
        return array
    if array.ndim != 2:
        raise ValueError(f"expected [samples] or [samples, channels], got shape {array.shape}")
    return array.mean(axis=1, dtype=np.float32) if array.shape[1] > 1 else array[:, 0]


def resample(array: np.ndarray, orig_sampling_rate: int, target_sampling_rate: int) -> np.ndarray:
    """Resample [samples] or [samples, channels] with soxr (high quality); float32 out."""
    if orig_sampling_rate <= 0 or target_sampling_rate <= 0:
        raise ValueError(f"sampling rates must be positive, got {orig_sampling_rate} -> {target_sampling_rate}")
    if orig_sampling_rate == target_sampling_rate:
        return np.asarray(array, dtype=np.float32)
    return soxr.resample(np.asarray(array, dtype=np.float32), orig_sampling_rate, target_sampling_rate, "HQ")
