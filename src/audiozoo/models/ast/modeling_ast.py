"""Audio Spectrogram Transformer (Gong et al., Interspeech 2021) as transformers models.

Input: [B, T, 128] normalised filterbank from [`AstFeatureExtractor`], T = `config.max_length`. The filterbank is
laid out as an image with frequency as height and time as width; 16x16 patches with separate strides give a
FREQUENCY-MAJOR token sequence (patch p = frequency row p // t, time column p % t) after the cls and distillation
tokens. The encoder is a DeiT (timm 0.4.5) pre-LN ViT.
"""

from dataclasses import dataclass

import torch
from torch import nn
from transformers.modeling_outputs import ModelOutput

from ...layers.classifiers import PooledTokenClassifierMixin, TokenFrameClassifierMixin
from ...layers.vit import PatchEmbedding, PreNormBlock, ViTEncoderMixin, ViTPreTrainedModel
from .configuration_ast import AstConfig


@dataclass
class AstModelOutput(ModelOutput):
    """Encoder output.

    Args:
        last_hidden_state: [B, 2 + F*T, D] after the final LayerNorm: cls, distillation, then patch tokens.
        pooler_output: [B, D] mean of the cls and distillation tokens (the original's pooling).
        hidden_states: L + 1 tensors: the embeddings (tokens + positions), then every block's output, before the
            final LayerNorm (as timm and transformers' ViTs).
        attentions: L tensors [B, H, N, N] (eager attention only).
    """

    last_hidden_state: torch.FloatTensor | None = None
    pooler_output: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


class AstEmbeddings(nn.Module):
    """Patch tokens of the (frequency x time) image, cls and distillation tokens, learned positions."""

    init_tables = ("cls_token", "distillation_token", "position_embeddings")

    def __init__(self, config: AstConfig):
        super().__init__()
        self.patch_embedding = PatchEmbedding(
            config.hidden_size, config.patch_size, (config.frequency_stride, config.time_stride)
        )
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        self.distillation_token = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        num_tokens = 2 + config.frequency_patches * config.time_patches
        self.position_embeddings = nn.Parameter(torch.zeros(1, num_tokens, config.hidden_size))

    def forward(self, input_values: torch.Tensor) -> torch.Tensor:
        patches = self.patch_embedding(input_values.unsqueeze(1).transpose(2, 3))  # [B, 1, mel, time]
        batch = patches.shape[0]
        tokens = torch.cat(
            [self.cls_token.expand(batch, -1, -1), self.distillation_token.expand(batch, -1, -1), patches], dim=1
        )
        return tokens + self.position_embeddings


class AstPreTrainedModel(ViTPreTrainedModel):
    config: AstConfig
    base_model_prefix = "ast"


class AstModel(ViTEncoderMixin, AstPreTrainedModel):
    def __init__(self, config: AstConfig):
        super().__init__(config)
        self.embeddings = AstEmbeddings(config)
        # separate q/k/v projections: their [B, H, L, d] views run faster in SDPA than slices of a fused one
        self.layers = nn.ModuleList([PreNormBlock(config, fused_qkv=False) for _ in range(config.num_hidden_layers)])
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.post_init()

    def frame_features(self, encoded: AstModelOutput) -> tuple[torch.Tensor, None]:
        """Per-time-step features [B, T', D]: the frequency-major patch grid averaged over frequency (no mask)."""
        patches = encoded.last_hidden_state[:, 2:]
        grid = patches.reshape(patches.shape[0], self.config.frequency_patches, self.config.time_patches, -1)
        return grid.mean(dim=1), None

    def embed(self, input_values: torch.Tensor) -> torch.Tensor:
        """`input_values`: [B, max_length, num_mel_bins] from AstFeatureExtractor (every frame is attended to)."""
        expected = (self.config.max_length, self.config.num_mel_bins)  # fixed input size
        if input_values.dim() != 3 or tuple(input_values.shape[1:]) != expected:
            raise ValueError(
                f"input_values must be [batch, {expected[0]}, {expected[1]}] (this model's max_length and mel bins; "
                f"use AstFeatureExtractor), got {tuple(input_values.shape)}"
            )
        return self.embeddings(input_values)

    def encoder_output(self, hidden: torch.Tensor, all_hidden: tuple | None, all_attentions: tuple | None) -> AstModelOutput:
        last = self.layer_norm(hidden)
        return AstModelOutput(
            last_hidden_state=last, pooler_output=(last[:, 0] + last[:, 1]) / 2, hidden_states=all_hidden,
            attentions=all_attentions,
        )


class AstForAudioClassification(PooledTokenClassifierMixin, AstPreTrainedModel):
    """AST with the original head (LayerNorm, eps 1e-5, + Linear) on the pooled (cls + distillation) / 2 token."""

    encoder_class = AstModel


class AstForAudioFrameClassification(TokenFrameClassifierMixin, AstPreTrainedModel):
    """Per-time-step logits: patch tokens averaged over their frequency rows, then the classification head (step t
    covers filterbank frames [t * time_stride, t * time_stride + 16): `config.frame_rate` steps per second, 10 for
    the 10/10 models); or, with `config.sed_head`, the PretrainedSED prediction head."""

    encoder_class = AstModel


__all__ = ["AstForAudioClassification", "AstForAudioFrameClassification", "AstModel", "AstPreTrainedModel"]
