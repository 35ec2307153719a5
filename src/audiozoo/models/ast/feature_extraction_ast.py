"""AST front end: waveform minus its mean -> Kaldi fbank (hanning) -> pad to `max_length` frames -> (x - mean) / (2 std)."""

from __future__ import annotations

from ...fbank_feature_extractor import KaldiFbankFeatureExtractor

# Normalisation statistics and input lengths of the original recipes (egs/*/run*.sh)
AST_PRESETS: dict[str, dict[str, float | int]] = {
    "audioset": {"mean": -4.2677393, "std": 4.5689974, "max_length": 1024},
    "esc50": {"mean": -6.6268077, "std": 5.358466, "max_length": 512},
    "speechcommands": {"mean": -6.845978, "std": 5.5654526, "max_length": 128},
}


class AstFeatureExtractor(KaldiFbankFeatureExtractor):
    """Waveforms -> `input_values` [B, max_length, 128], as the original dataloader computes them per clip.

    Each clip's mean is removed over its own samples, its own frames are kept and the rest of the `max_length`
    frames are 0.0 in the log domain (normalised afterwards, as the original). Clips longer than `max_length`
    frames are refused unless `truncation=True` (then the first frames are kept, as the original does).
    """

    def __init__(
        self,
        sampling_rate: int = 16000,
        num_mel_bins: int = 128,
        mean: float = AST_PRESETS["audioset"]["mean"],
        std: float = AST_PRESETS["audioset"]["std"],
        max_length: int = 1024,
        min_frames: int = 1,
        **kwargs,
    ):
        kwargs.setdefault("window", "hanning")
        kwargs.setdefault("subtract_waveform_mean", True)
        super().__init__(
            sampling_rate=sampling_rate,
            num_mel_bins=num_mel_bins,
            mean=mean,
            std=std,
            max_length=max_length,
            min_frames=min_frames,
            **kwargs,
        )

    @classmethod
    def from_preset(cls, dataset: str, **overrides) -> AstFeatureExtractor:
        """The front end of a released recipe: "audioset", "esc50" or "speechcommands"."""
        if dataset not in AST_PRESETS:
            raise ValueError(f"unknown AST preset {dataset!r}; expected one of {sorted(AST_PRESETS)}")
        return cls(**{**AST_PRESETS[dataset], **overrides})


__all__ = ["AST_PRESETS", "AstFeatureExtractor"]
