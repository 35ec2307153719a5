"""EAT front end: the AST front end (mean removal, hanning fbank, 0.0 log padding, / (2 std)) with EAT's statistics."""

from __future__ import annotations

from ...feature_extraction.fbank_feature_extractor import FixedLengthFbankFeatureExtractor

# EAT's own (rounded) statistics and input lengths (data/raw_audio_dataset.py, scripts/finetuning_*.sh)
EAT_PRESETS: dict[str, dict[str, float | int]] = {
    "audioset": {"mean": -4.268, "std": 4.569, "max_length": 1024},
    "esc50": {"mean": -6.627, "std": 5.359, "max_length": 512},
    "speechcommands": {"mean": -6.846, "std": 5.565, "max_length": 128},
}


class EatFeatureExtractor(FixedLengthFbankFeatureExtractor):
    """Waveforms -> `input_values` [B, max_length, 128] as the original computes them per clip; longer clips are
    refused unless `truncation=True` (then the first frames are kept, as the original does)."""

    PRESETS = EAT_PRESETS


__all__ = ["EAT_PRESETS", "EatFeatureExtractor"]
