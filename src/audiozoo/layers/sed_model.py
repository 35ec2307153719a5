"""What the PretrainedSED frame encoders (ATST-Frame, fPaSST, ASiT, M2D, frame-MobileNet) share: a config base,
weight initialisation, the `...ForAudioFrameClassification` model (encoder + `SedPredictionHead`) and the
`...ForAudioClassification` model (encoder + the same head's clip output, or a pooled linear head).

Each family adds its encoder (a `SedPreTrainedModel` whose forward maps `input_values` [B, 1, n_mels, T] to a
`BaseModelOutput` with `last_hidden_state` [B, N, D], the sequence the original wrapper returns) and binds it
here with three class attributes (four for a clip classifier that does not mean-pool: `clip_pooling`).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from transformers import initialization as init
from transformers.modeling_outputs import BaseModelOutput

from .classifiers import FrameClassifierMixin, NormLinearHead, SedHeadClipClassifierMixin
from .sed_head import SedHeadConfigMixin, SedHeadSettings
from .vit import PreNormBlock, ViTEncoderConfig, ViTEncoderMixin, ViTPreTrainedModel


class SedEncoderConfig(SedHeadConfigMixin, ViTEncoderConfig):
    r"""Fields shared by the frame encoders' configs: the transformer's (`ViTEncoderConfig`; unused by
    frame-MobileNet) and

    Args:
        sampling_rate: input rate of the feature extractor (16 kHz for every released model).
        sed_head: settings of the prediction head (`audiozoo.layers.sed_head.SedHeadSettings`; None = the paper's
            defaults: 250 frames per 10 s, no sequence model, linear strong and weak heads).
    """

    sampling_rate: int = 16000
    sed_head: dict | None = None

    @property
    def native_frame_rate(self) -> float:
        """The prediction head's with its default settings (25 = 40 ms frames, as the released models)."""
        return SedHeadSettings().frame_rate


class SedPreTrainedModel(ViTPreTrainedModel):
    """Initialisation for every frame encoder; modules list their learned tables in `init_tables`."""

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, nn.BatchNorm2d):
            init.ones_(module.weight)
            init.zeros_(module.bias)
            init.zeros_(module.running_mean)
            init.ones_(module.running_var)
        elif isinstance(module, (nn.GRU, nn.LSTM)):  # torch's own rule
            bound = 1.0 / math.sqrt(module.hidden_size)
            for parameter in module.parameters():
                init.uniform_(parameter, -bound, bound)


class SedViTEncoder(ViTEncoderMixin, SedPreTrainedModel):
    """A pre-LN ViT encoder: family-specific `embed` (input -> tokens with positions), shared blocks, final
    LayerNorm, then `select` (which tokens the original returns). Subclasses add their embedding parameters in
    `__init__` before calling `self.post_init()`.

    Output: `last_hidden_state`, the encoder sequence [B, N, D] after the final LayerNorm; `hidden_states`, the
    embeddings and every block's output (all tokens); `attentions` with eager attention."""

    def __init__(self, config):
        super().__init__(config)
        self.layers = nn.ModuleList([PreNormBlock(config, fused_qkv=False) for _ in range(config.num_hidden_layers)])
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.gradient_checkpointing = False

    @property
    def output_size(self) -> int:
        return self.config.hidden_size

    def select(self, normalised: torch.Tensor) -> torch.Tensor:
        """The output sequence from the normalised tokens (all of them by default)."""
        return normalised

    def encoder_output(self, hidden: torch.Tensor, all_hidden: tuple | None, all_attentions: tuple | None):
        return BaseModelOutput(last_hidden_state=self.select(self.layer_norm(hidden)), hidden_states=all_hidden,
                               attentions=all_attentions)


class _SedEncoderClassifier:
    """What the frame and clip classifiers of these encoders share: the head reads the encoder's output sequence."""

    @property
    def encoder(self) -> nn.Module:
        return getattr(self, self.base_model_prefix)

    @property
    def sed_input_size(self) -> int:
        return self.encoder.output_size

    def _sed_sequence(self, encoder, encoded) -> torch.Tensor:
        """The encoder's output tokens (already one per frame), whatever `input_sequence` says."""
        return encoded.last_hidden_state


class SedForAudioFrameClassificationBase(_SedEncoderClassifier, FrameClassifierMixin, SedPreTrainedModel):
    """Encoder + PretrainedSED prediction head. Subclasses set `config_class`, `base_model_prefix`, `encoder_class`.

    `input_values`: [B, 1, n_mels, T] from the family's feature extractor. Outputs `logits` [B, seq_len, C] (frames
    at `config.frame_rate`), `clip_logits` [B, C], their probabilities, and `loss` when `labels` (float frame
    targets [B, seq_len, C]) are given: masked frame BCE (`frame_mask` [B, seq_len] bool) plus clip BCE if
    `clip_labels` [B, C] are given.
    """

    uses_sed_head = True  # the only head (its default settings when `config.sed_head` is None)


CLIP_POOLINGS = ("mean", "cls")


class SedForAudioClassificationBase(_SedEncoderClassifier, SedHeadClipClassifierMixin, SedPreTrainedModel):
    """Encoder + clip head. Subclasses set `config_class`, `base_model_prefix`, `encoder_class` and, unless they
    mean-pool, `clip_pooling`.

    With `config.sed_head` set (every converted PretrainedSED folder), the head is the frame classifier's
    PretrainedSED prediction head and `logits` are its clip (weak) logits: a frame checkpoint loads into this class
    with the same weights and gives exactly the frame classifier's `clip_logits` (multi-label: apply a sigmoid).
    Without it, a pooled linear head, `classifier` = LayerNorm (eps `config.layer_norm_eps`) + Linear, on the
    encoder's output sequence pooled by `clip_pooling`: "mean" over its time steps, or "cls" (its first token).
    `audiozoo finetune` trains this head for clip tasks.

    `input_values`: [B, 1, n_mels, T] from the family's feature extractor. Outputs `logits` [B, C] and `loss` when
    `labels` are given ([B] class ids or [B, C] floats, per `config.problem_type`).

    These models were trained on 10 s windows and some encoders refuse longer input: `window_seconds` says how
    long a window is, and `pipeline("audio-classification")` classifies longer clips window by window.
    """

    clip_pooling = "mean"

    @property
    def window_seconds(self) -> float:
        """Audio per model window: the PretrainedSED head's (`sed_head.window_seconds`), 10 s without one."""
        return SedHeadSettings.from_dict(self.config.sed_head).window_seconds

    def _init_classifier(self, config) -> None:
        if self.clip_pooling not in CLIP_POOLINGS:
            raise ValueError(f"clip_pooling must be one of {CLIP_POOLINGS}, got {self.clip_pooling!r}")
        self.classifier = NormLinearHead(config, input_size=self.encoder.output_size, eps=config.layer_norm_eps)

    def _own_clip_logits(self, encoded) -> dict:
        sequence = encoded.last_hidden_state
        pooled = sequence[:, 0] if self.clip_pooling == "cls" else sequence.mean(dim=1)
        return {"logits": self.classifier(pooled)}


def check_spectrogram_input(input_values: torch.Tensor, num_mel_bins: int, model: str) -> None:
    """Frame encoders take [B, 1, n_mels, T]: say what was wrong otherwise."""
    if input_values.dim() != 4 or input_values.shape[1] != 1 or input_values.shape[2] != num_mel_bins:
        raise ValueError(
            f"{model} expects input_values [batch, 1, {num_mel_bins} mel bins, frames] from its feature extractor, "
            f"got shape {tuple(input_values.shape)}"
        )


__all__ = [
    "SedEncoderConfig",
    "SedForAudioClassificationBase",
    "SedForAudioFrameClassificationBase",
    "SedPreTrainedModel",
    "SedViTEncoder",
    "check_spectrogram_input",
]
