"""Configuration of the BYOL-A encoders (Niizumi et al.): v1 AudioNTT2020 and v2 AudioNTT2022."""

from __future__ import annotations

from transformers import PreTrainedConfig

from ...layers.sed_head import SedHeadConfigMixin


class ByolAConfig(SedHeadConfigMixin, PreTrainedConfig):
    r"""Configuration of [`ByolAModel`], [`ByolAForAudioClassification`] and [`ByolAForAudioFrameClassification`].

    Args:
        version: 1 (AudioNTT2020: 3 conv blocks, MLP output) or 2 (AudioNTT2022: 2 conv blocks, conv features
            concatenated with the MLP output).
        hidden_size: output width d (v1: 512/1024/2048; v2: conv width 1024 + MLP output, 3072 released).
        mlp_hidden_size: width of the MLP's hidden layer (v1: = hidden_size; v2: 2048 released).
        num_conv_blocks: conv3x3-BN-ReLU-maxpool2 blocks (3 for v1, 2 for v2); conv_channels: 64.
        n_mels: mel bins of the input (64); dropout: between the MLP layers (0.3); batch_norm_eps: 1e-5.
        sampling_rate, hop_length: the front end (16 kHz, 10 ms hop).
    """

    model_type = "audiozoo-byol-a"

    version: int = 1
    hidden_size: int = 512
    mlp_hidden_size: int = 512
    num_conv_blocks: int = 3
    conv_channels: int = 64
    n_mels: int = 64
    dropout: float = 0.3
    batch_norm_eps: float = 1e-5
    sampling_rate: int = 16000
    hop_length: int = 160
    sed_head: dict | None = None

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.version not in (1, 2):
            raise ValueError(f"version must be 1 or 2, got {self.version}")
        if self.version == 2 and self.hidden_size <= self.conv_feature_size:
            raise ValueError(
                f"v2 hidden_size ({self.hidden_size}) must exceed the conv feature width ({self.conv_feature_size})"
            )

    @property
    def conv_feature_size(self) -> int:
        """Width of the flattened conv features: channels x remaining mel bins."""
        return self.conv_channels * (self.n_mels // 2**self.num_conv_blocks)

    @property
    def time_reduction(self) -> int:
        return 2**self.num_conv_blocks

    @property
    def native_frame_rate(self) -> float:
        """Frames per second of `last_hidden_state`, which the linear frame head classifies (12.5 for v1, 25 for v2)."""
        return self.sampling_rate / self.hop_length / self.time_reduction


__all__ = ["ByolAConfig"]
