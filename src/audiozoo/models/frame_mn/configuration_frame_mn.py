"""Configuration of frame-MobileNet (EfficientAT MobileNetV3 with frame output, PretrainedSED)."""

from __future__ import annotations

from ...layers.sed_model import SedEncoderConfig


class FrameMnConfig(SedEncoderConfig):
    r"""Configuration of [`FrameMnModel`] and [`FrameMnForAudioFrameClassification`].

    Args:
        width_mult: channel width multiplier (0.6 for frame_mn06, 1.0 for frame_mn10; the topology is the same for
            0.3, 0.45, 0.5, 0.6 and 1.0).
        num_mel_bins: mel bins of the input (128; the network reduces them to one row).
        batch_norm_eps, batch_norm_momentum: BatchNorm settings of the original (1e-3, 0.01).
    The transformer fields of the base config are unused.
    """

    model_type = "audiozoo-frame-mn"

    width_mult: float = 1.0
    num_mel_bins: int = 128
    batch_norm_eps: float = 1e-3
    batch_norm_momentum: float = 0.01


__all__ = ["FrameMnConfig"]
