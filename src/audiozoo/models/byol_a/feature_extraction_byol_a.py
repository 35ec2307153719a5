"""BYOL-A front end: 16 kHz waveform -> log-mel (64 bins, 60-7800 Hz, 1024/160) -> (x - mean) / std."""

from __future__ import annotations

import logging
from collections.abc import Iterable

import torch
from transformers import BatchFeature
from transformers.feature_extraction_sequence_utils import SequenceFeatureExtractor

from ...audio.melspec import LogMelSpectrogram
from ...feature_extraction.features import check_sampling_rate, float32_front_end, prepare_input
from ...layers.masking import lengths_to_valid_mask
from ...layers.remote_code_saving import RemoteCodeSavingMixin

logger = logging.getLogger(__name__)

# Normalisation statistics are dataset-specific (the original computes them per downstream dataset); these are
# the examples of the original READMEs, kept as named presets.
BYOL_A_NORM_PRESETS: dict[str, tuple[float, float]] = {
    "v1_readme": (-5.4919195, 5.0389895),
    "v2_spcv2": (-9.660292, 4.7219563),
}


class ByolAFeatureExtractor(RemoteCodeSavingMixin, SequenceFeatureExtractor):
    """Waveforms -> `input_values` [B, 1, n_mels, T] (the original layout) and, when lengths differ, a frame mask.

    v1 uses torchaudio's MelSpectrogram (HTK mel scale, no filter norm); v2 nnAudio's (Slaney scale and area
    norm). `mean`/`std` are dataset statistics: compute them for your data with `compute_norm_stats`.
    """

    model_input_names = ["input_values", "attention_mask"]

    def __init__(
        self, sampling_rate: int = 16000, n_fft: int = 1024, win_length: int = 1024, hop_length: int = 160,
        n_mels: int = 64, f_min: float = 60.0, f_max: float = 7800.0, mel_scale: str = "htk",
        mel_norm: str | None = None, mean: float = BYOL_A_NORM_PRESETS["v1_readme"][0],
        std: float = BYOL_A_NORM_PRESETS["v1_readme"][1], min_frames: int = 8, padding_value: float = 0.0,
        return_attention_mask: bool = False, **kwargs,
    ):
        kwargs.pop("feature_size", None)
        super().__init__(feature_size=n_mels, sampling_rate=sampling_rate, padding_value=padding_value,
                         return_attention_mask=return_attention_mask, **kwargs)
        self.n_fft, self.win_length, self.hop_length, self.n_mels = n_fft, win_length, hop_length, n_mels
        self.f_min, self.f_max, self.mel_scale, self.mel_norm = f_min, f_max, mel_scale, mel_norm
        self.mean, self.std, self.min_frames = mean, std, min_frames
        self._melspec: LogMelSpectrogram | None = None

    @classmethod
    def for_version(cls, version: int, **overrides) -> ByolAFeatureExtractor:
        """v1: HTK mel, README stats; v2: Slaney mel with area norm, the v2 README's stats."""
        if version == 1:
            defaults = dict(mel_scale="htk", mel_norm=None, mean=BYOL_A_NORM_PRESETS["v1_readme"][0],
                            std=BYOL_A_NORM_PRESETS["v1_readme"][1], min_frames=8)
        elif version == 2:
            defaults = dict(mel_scale="slaney", mel_norm="slaney", mean=BYOL_A_NORM_PRESETS["v2_spcv2"][0],
                            std=BYOL_A_NORM_PRESETS["v2_spcv2"][1], min_frames=4)
        else:
            raise ValueError(f"BYOL-A version must be 1 or 2, got {version}")
        return cls(**{**defaults, **overrides})

    @property
    def melspec(self) -> LogMelSpectrogram:
        if self._melspec is None:
            self._melspec = LogMelSpectrogram(
                self.sampling_rate, self.n_fft, self.win_length, self.hop_length, self.f_min, self.f_max,
                self.n_mels, self.mel_scale, self.mel_norm,
            )
        return self._melspec

    def to_dict(self) -> dict:
        output = super().to_dict()
        output.pop("_melspec", None)
        return output

    @property
    def minimum_samples(self) -> int:
        """The shortest clip (samples at `sampling_rate`): `min_frames` frames for the conv stack, and more than
        n_fft // 2 samples for the reflect padding."""
        return max((self.min_frames - 1) * self.hop_length, self.n_fft // 2 + 1)

    @float32_front_end
    def log_mel(self, raw_audio, sampling_rate: int | None = None, device=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Validated waveforms -> (log-mel [B, n_mels, T] before normalisation, frames per clip [B])."""
        return self._log_mel(raw_audio, sampling_rate, device)

    def _log_mel(self, raw_audio, sampling_rate, device, normalize: tuple[float, float] | None = None):
        check_sampling_rate(sampling_rate, self.sampling_rate, type(self).__name__)
        waveforms, lengths = prepare_input(raw_audio, self.minimum_samples, self.sampling_rate, self.padding_value,
                                           device)
        log_mel = self.melspec.to(lengths.device)(waveforms, lengths, normalize=normalize)
        return log_mel, self.melspec.num_frames(lengths)

    @float32_front_end
    def __call__(self, raw_audio, sampling_rate: int | None = None, return_tensors: str | None = "pt",
                 return_attention_mask: bool | None = None, device=None, **kwargs) -> BatchFeature:
        """Mono float waveforms at 16 kHz -> normalised log-mel; padded frames are 0 (the mean) and masked."""
        if sampling_rate is None:
            logger.warning("ByolAFeatureExtractor was called without sampling_rate; assuming %d Hz.", self.sampling_rate)
        # normalised inside the mel transform, clip by clip while each is in cache (the same operations)
        features, frames = self._log_mel(raw_audio, sampling_rate, device, (self.mean, self.std))
        valid = lengths_to_valid_mask(frames, features.shape[-1])
        uneven = bool((frames != frames.max()).any())
        if not bool(valid.all()):
            features.mul_(valid.unsqueeze(1))
        data = {"input_values": features.unsqueeze(1)}
        if return_attention_mask if return_attention_mask is not None else (uneven or self.return_attention_mask):
            data["attention_mask"] = valid.long()
        if return_tensors == "np":
            data = {key: value.cpu().numpy() for key, value in data.items()}
        return BatchFeature(data=data)

    def compute_norm_stats(self, clips: Iterable, sampling_rate: int | None = None) -> tuple[float, float]:
        """Mean and std over all log-mel values of `clips` (as the original's calc_norm_stats); sets them too."""
        total, total_sq, count = 0.0, 0.0, 0
        for clip in clips:
            log_mel, _ = self.log_mel([clip], sampling_rate)
            values = log_mel.double()
            total, total_sq, count = total + float(values.sum()), total_sq + float((values**2).sum()), count + values.numel()
        if count == 0:
            raise ValueError("compute_norm_stats needs at least one clip")
        mean = total / count
        self.mean, self.std = mean, (total_sq / count - mean**2) ** 0.5
        return self.mean, self.std


__all__ = ["BYOL_A_NORM_PRESETS", "ByolAFeatureExtractor"]
