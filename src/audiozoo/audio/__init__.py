"""Waveform -> features, shared by every model: file loading and resampling, Kaldi filterbank."""

from .fbank import KaldiFbank, kaldi_mel_banks, kaldi_window
from .io import AudioDecodeError, load_audio, resample, to_float32, to_mono

__all__ = [
    "AudioDecodeError",
    "KaldiFbank",
    "kaldi_mel_banks",
    "kaldi_window",
    "load_audio",
    "resample",
    "to_float32",
    "to_mono",
]
