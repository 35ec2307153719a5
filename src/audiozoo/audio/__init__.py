"""Waveform -> features, shared by every model: file loading and resampling, Kaldi filterbank, mel front ends.

The torch front ends (`KaldiFbank`, ...) load on first use, so the command line can check audio files
(`audiozoo.audio.io`, numpy + soundfile only) before torch is imported.
"""

from __future__ import annotations

from .io import AudioDecodeError, AudioFileInfo, check_audio_file, load_audio, resample, to_float32, to_mono

_FBANK_NAMES = ("KaldiFbank", "kaldi_mel_banks", "kaldi_window")

__all__ = [
    "AudioDecodeError",
    "AudioFileInfo",
    "KaldiFbank",
    "check_audio_file",
    "kaldi_mel_banks",
    "kaldi_window",
    "load_audio",
    "resample",
    "to_float32",
    "to_mono",
]


def __getattr__(name: str):
    if name in _FBANK_NAMES:
        from . import fbank

        return getattr(fbank, name)
    raise AttributeError(f"module 'audiozoo.audio' has no attribute {name!r}")
