"""BEATs front end: 16 kHz waveform -> (fbank(x * 2**15) - 15.41663) / (2 * 6.55582), 128 bins, povey window."""

from __future__ import annotations

from ...feature_extraction.fbank_feature_extractor import KaldiFbankFeatureExtractor


class BeatsFeatureExtractor(KaldiFbankFeatureExtractor):
    """Waveforms -> `input_values` [B, T, 128] and, when lengths differ, a frame `attention_mask`.

    As the original, the filterbank of a padded batch is computed on the zero-padded waveforms, and by default
    the frame mask follows the original's reduction of the sample mask (`padding_mask_rule="original"`).
    Any length of at least one patch (16 frames, 0.175 s) is accepted.
    """

    def __init__(
        self,
        sampling_rate: int = 16000,
        num_mel_bins: int = 128,
        waveform_scale: float = 32768.0,
        mean: float = 15.41663,
        std: float = 6.55582,
        min_frames: int = 16,
        padding_mask_rule: str = "original",
        **kwargs,
    ):
        kwargs.setdefault("window", "povey")
        super().__init__(
            sampling_rate=sampling_rate,
            num_mel_bins=num_mel_bins,
            waveform_scale=waveform_scale,
            mean=mean,
            std=std,
            min_frames=min_frames,
            padding_mask_rule=padding_mask_rule,
            **kwargs,
        )


__all__ = ["BeatsFeatureExtractor"]
