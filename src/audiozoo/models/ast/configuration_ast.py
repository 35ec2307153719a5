"""Configuration of the Audio Spectrogram Transformer (Gong et al., 2021), as the original YuanGongND/ast code."""

from __future__ import annotations

from ...layers.vit import FilterbankViTConfig


class AstConfig(FilterbankViTConfig):
    r"""Configuration of [`AstModel`], [`AstForAudioClassification`] and [`AstForAudioFrameClassification`].

    Defaults are the released AudioSet model (DeiT-base 384 backbone, 10/10 strides, 1024 frames).

    Args:
        hidden_size, num_hidden_layers, num_attention_heads, intermediate_size, hidden_act, qkv_bias: the ViT.
        layer_norm_eps: eps of every encoder LayerNorm (timm: 1e-6).
        classifier_layer_norm_eps: eps of the head's LayerNorm (torch default 1e-5 in the original).
        patch_size: square patch size; frequency_stride, time_stride: patch strides (10, 12, 14 or 16 released).
        max_length: input frames (the position table is sized for exactly this many).
        num_mel_bins, sampling_rate, frame_shift_ms: the front end the model expects.
        hidden_dropout, attention_dropout: 0 in the released models.
        sed_head: settings of the PretrainedSED prediction head for [`AstForAudioFrameClassification`]
            (`audiozoo.layers.sed_head.SedHeadSettings`); None: the clip head applied per time step.
    """

    model_type = "audiozoo-ast"

    frequency_stride: int = 10
    time_stride: int = 10

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.max_length < self.patch_size or self.num_mel_bins < self.patch_size:
            raise ValueError(f"max_length and num_mel_bins must be at least patch_size ({self.patch_size})")

    @property
    def frequency_patches(self) -> int:
        return (self.num_mel_bins - self.patch_size) // self.frequency_stride + 1

    @property
    def time_patches(self) -> int:
        return (self.max_length - self.patch_size) // self.time_stride + 1

    @property
    def num_frequency_patches(self) -> int:
        """Patches per time step (the frame head averages over them)."""
        return self.frequency_patches

    @property
    def time_step_frames(self) -> int:
        """The frame head's time steps are `time_stride` frames apart."""
        return self.time_stride


__all__ = ["AstConfig"]
