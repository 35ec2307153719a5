"""AST front end: waveform minus its mean -> Kaldi fbank (hanning) -> pad to `max_length` frames -> (x - mean) / (2 std)."""

from __future__ import annotations

from ...feature_extraction.fbank_feature_extractor import FixedLengthFbankFeatureExtractor

# Normalisation statistics and input lengths of the original recipes (egs/*/run*.sh)
AST_PRESETS: dict[str, dict[str, float | int]] = {
    "audioset": {"mean": -4.2677393, "std": 4.5689974, "max_length": 1024},
    "esc50": {"mean": -6.6268077, "std": 5.358466, "max_length": 512},
    "speechcommands": {"mean": -6.845978, "std": 5.5654526, "max_length": 128},
}


class AstFeatureExtractor(FixedLengthFbankFeatureExtractor):
    """Waveforms -> `input_values` [B, max_length, 128], as the original dataloader computes them per clip.

    Each clip's mean is removed, its own frames are kept and the rest of the `max_length` frames are 0.0 in the
    log domain (normalised afterwards, as the original). Clips longer than `max_length` frames are refused
    unless `truncation=True` (then the first frames are kept, as the original does).
    """

    PRESETS = AST_PRESETS


__all__ = ["AST_PRESETS", "AstFeatureExtractor"]
