"""BEATs front end: waveform at 16 kHz -> normalised 128-bin Kaldi filterbank + frame mask, batched in torch."""

from __future__ import annotations

import logging

import torch
from transformers import BatchFeature
from transformers.feature_extraction_sequence_utils import SequenceFeatureExtractor

from ...audio.fbank import KaldiFbank
from ...features import check_sampling_rate, check_waveforms, pad_waveforms, split_batch
from ...masking import lengths_to_valid_mask, reduce_valid_mask_by_chunks

logger = logging.getLogger(__name__)


class BeatsFeatureExtractor(SequenceFeatureExtractor):
    """Waveforms -> `input_values` [B, T, 128] = (fbank(x * 2**15) - mean) / (2 * std), plus `attention_mask`.

    The filterbank of a padded batch is computed on the zero-padded waveforms, as the original does, and the
    frame mask follows the original's reduction of the sample mask (a frame counts as padding only if its whole
    chunk of samples is padding). `attention_mask` is returned when the lengths differ (or when asked).

    Args:
        sampling_rate: the rate the model was trained at; other rates are refused.
        num_mel_bins, frame_length_ms, frame_shift_ms: Kaldi filterbank options.
        waveform_scale: samples are multiplied by this first (2**15: int16 range, as the original).
        mean, std: normalisation statistics; the original divides by 2 * std.
        patch_size: frames per patch (only used to refuse clips shorter than one patch).
        padding_mask_rule: "original" (default): a frame is padding only if its whole chunk of samples is, as
            the original reduces the sample mask; "exact": a frame is audio only if its window lies inside the
            clip (use with a model whose config has the same rule, for batch-independent outputs).
    """

    model_input_names = ["input_values", "attention_mask"]

    def __init__(
        self,
        sampling_rate: int = 16000,
        num_mel_bins: int = 128,
        frame_length_ms: float = 25.0,
        frame_shift_ms: float = 10.0,
        waveform_scale: float = 32768.0,
        mean: float = 15.41663,
        std: float = 6.55582,
        patch_size: int = 16,
        padding_mask_rule: str = "original",
        padding_value: float = 0.0,
        return_attention_mask: bool = False,
        **kwargs,
    ):
        kwargs.pop("feature_size", None)  # saved by the base class; always num_mel_bins here
        super().__init__(
            feature_size=num_mel_bins,
            sampling_rate=sampling_rate,
            padding_value=padding_value,
            return_attention_mask=return_attention_mask,
            **kwargs,
        )
        self.num_mel_bins = num_mel_bins
        self.frame_length_ms = frame_length_ms
        self.frame_shift_ms = frame_shift_ms
        self.waveform_scale = waveform_scale
        self.mean = mean
        self.std = std
        self.patch_size = patch_size
        if padding_mask_rule not in ("original", "exact"):
            raise ValueError(f"padding_mask_rule must be 'original' or 'exact', got {padding_mask_rule!r}")
        self.padding_mask_rule = padding_mask_rule
        self._fbank: KaldiFbank | None = None

    @property
    def fbank(self) -> KaldiFbank:
        if self._fbank is None:
            self._fbank = KaldiFbank(
                sample_rate=self.sampling_rate,
                num_mel_bins=self.num_mel_bins,
                frame_length_ms=self.frame_length_ms,
                frame_shift_ms=self.frame_shift_ms,
                waveform_scale=self.waveform_scale,
            )
        return self._fbank

    @property
    def _frame_length_and_shift(self) -> tuple[int, int]:
        return int(self.sampling_rate * self.frame_length_ms / 1000), int(self.sampling_rate * self.frame_shift_ms / 1000)

    @property
    def min_samples(self) -> int:
        """Samples needed for one patch (`patch_size` frames)."""
        frame_length, frame_shift = self._frame_length_and_shift
        return frame_length + (self.patch_size - 1) * frame_shift

    def frame_mask(self, lengths: torch.Tensor, num_samples: int, num_frames: int) -> torch.Tensor:
        """[B] clip lengths -> [B, T] frame mask under `padding_mask_rule`."""
        if self.padding_mask_rule == "original":
            sample_mask = lengths_to_valid_mask(lengths, num_samples)
            return reduce_valid_mask_by_chunks(sample_mask, num_frames)
        frame_length, frame_shift = self._frame_length_and_shift
        return lengths_to_valid_mask(1 + (lengths - frame_length) // frame_shift, num_frames)

    def to_dict(self) -> dict:
        output = super().to_dict()
        output.pop("_fbank", None)
        return output

    def __call__(
        self,
        raw_audio,
        sampling_rate: int | None = None,
        return_tensors: str | None = "pt",
        return_attention_mask: bool | None = None,
        device: str | torch.device | None = None,
        **kwargs,
    ) -> BatchFeature:
        """
        Args:
            raw_audio: a mono float waveform, a list of them (any lengths), or a 2-D [batch, samples] array.
            sampling_rate: rate of `raw_audio`; must equal `self.sampling_rate` (checked when given).
            return_tensors: "pt" (default) or "np".
            return_attention_mask: force (True) or suppress (False) the mask; default: only if lengths differ.
            device: compute the features on this device (e.g. "cuda").
        """
        if sampling_rate is None:
            logger.warning(
                "BeatsFeatureExtractor was called without sampling_rate; assuming %d Hz. Pass sampling_rate to "
                "have it checked.",
                self.sampling_rate,
            )
        check_sampling_rate(sampling_rate, self.sampling_rate, type(self).__name__)
        waveforms = split_batch(raw_audio)
        check_waveforms(waveforms, self.min_samples, self.sampling_rate)
        batch, lengths = pad_waveforms(waveforms, self.padding_value, device)

        fbank = self.fbank.to(batch.device)
        features = (fbank(batch) - self.mean) / (2 * self.std)
        data = {"input_values": features}

        uneven = bool((lengths != lengths.max()).any())
        wants_mask = return_attention_mask if return_attention_mask is not None else (uneven or self.return_attention_mask)
        if wants_mask:
            data["attention_mask"] = self.frame_mask(lengths, batch.shape[1], features.shape[1]).long()
        if return_tensors == "np":
            data = {key: value.cpu().numpy() for key, value in data.items()}
        elif return_tensors not in ("pt", None):
            raise ValueError(f"return_tensors must be 'pt' or 'np', got {return_tensors!r}")
        return BatchFeature(data=data)


__all__ = ["BeatsFeatureExtractor"]
