"""EAT (Chen et al., IJCAI 2024) as transformers models.

Input: [B, T, 128] normalised filterbank from [`EatFeatureExtractor`] ([B, 1, T, 128] as the original takes it is
accepted too). 16x16 patches, TIME-MAJOR (token = t * 8 + f), plus a fixed sin-cos position table read from the
checkpoint; a CLS token (no position) first; a LayerNorm, then post-LN data2vec-2.0 blocks; no final norm.
"""

from dataclasses import dataclass

import torch
from torch import nn
from transformers import initialization as init
from transformers.modeling_outputs import ModelOutput

from ...layers.classifiers import PooledTokenClassifierMixin, TokenFrameClassifierMixin
from ...layers.heads import time_major_patches_to_frames
from ...layers.vit import PatchEmbedding, PostNormBlock, ViTEncoderMixin, ViTPreTrainedModel
from .configuration_eat import EatConfig


@dataclass
class EatModelOutput(ModelOutput):
    """Encoder output.

    Args:
        last_hidden_state: [B, 1 + P, D]: the CLS (utterance) token, then P time-major patch tokens.
        pooler_output: [B, D] the CLS token (EAT's utterance feature).
        hidden_states: L + 1 tensors: the input of the first block (after the input LayerNorm), then every
            block's output; the last equals `last_hidden_state`.
        attentions: L tensors [B, H, N, N] (eager attention only).
    """

    last_hidden_state: torch.FloatTensor | None = None
    pooler_output: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


def sincos_position_table(hidden_size: int, time_patches: int, frequency_patches: int) -> torch.Tensor:
    """EAT's fixed 2-D table [time_patches * frequency_patches, D], time-major rows.

    The first D/2 channels encode the frequency index, the last D/2 the time index; each half is
    [sin(pos * w) | cos(pos * w)] with w_i = 1 / 10000^(i / (D/4)). Used to initialise new models; converted
    checkpoints carry their own table.
    """
    quarter = hidden_size // 4
    omega = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float64) / quarter)

    def encode(positions: torch.Tensor) -> torch.Tensor:
        angles = positions.to(torch.float64)[:, None] * omega[None, :]
        return torch.cat([angles.sin(), angles.cos()], dim=1)

    time_index = torch.arange(time_patches).repeat_interleave(frequency_patches)
    frequency_index = torch.arange(frequency_patches).repeat(time_patches)
    return torch.cat([encode(frequency_index), encode(time_index)], dim=1).float()


class EatEmbeddings(nn.Module):
    def __init__(self, config: EatConfig):
        super().__init__()
        self.patch_embedding = PatchEmbedding(config.hidden_size, config.patch_size, (config.patch_size,) * 2)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        # fixed (not trained) but stored: released tables may be a prefix of a longer one, and are read as saved
        self.position_embeddings = nn.Parameter(
            torch.zeros(1, config.num_positions, config.hidden_size), requires_grad=False
        )
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout)

    def forward(self, input_values: torch.Tensor) -> torch.Tensor:
        patches = self.patch_embedding(input_values.unsqueeze(1))  # [B, 1, time, mel] -> time-major tokens
        if patches.shape[1] > self.position_embeddings.shape[1]:
            raise ValueError(
                f"{patches.shape[1]} patches exceed the position table ({self.position_embeddings.shape[1]} rows); "
                "use shorter input"
            )
        patches = patches + self.position_embeddings[:, : patches.shape[1]]
        tokens = torch.cat([self.cls_token.expand(patches.shape[0], -1, -1), patches], dim=1)
        return self.dropout(self.layer_norm(tokens))


class EatPreTrainedModel(ViTPreTrainedModel):
    config: EatConfig
    base_model_prefix = "eat"
    _no_split_modules = ["PostNormBlock"]

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """timm's initialisation; the CLS token normal(0, 1) and the sin-cos position table, as the original."""
        super()._init_weights(module)
        if isinstance(module, EatEmbeddings):
            init.normal_(module.cls_token)
            config = self.config
            steps = config.num_positions // config.num_frequency_patches
            table = sincos_position_table(config.hidden_size, steps, config.num_frequency_patches)
            init.copy_(module.position_embeddings, table[: config.num_positions].unsqueeze(0))


class EatModel(ViTEncoderMixin, EatPreTrainedModel):
    def __init__(self, config: EatConfig):
        super().__init__(config)
        self.embeddings = EatEmbeddings(config)
        # separate q/k/v projections (split from the fused original at conversion): faster views for SDPA
        self.layers = nn.ModuleList([PostNormBlock(config, fused_qkv=False) for _ in range(config.num_hidden_layers)])
        self.post_init()

    def frame_features(self, encoded: EatModelOutput) -> tuple[torch.Tensor, None]:
        """Per-time-step features [B, T', D]: time-major patch tokens averaged over their 8 frequency patches."""
        return time_major_patches_to_frames(encoded.last_hidden_state[:, 1:], self.config.num_frequency_patches)

    def embed(self, input_values: torch.Tensor) -> torch.Tensor:
        """`input_values`: [B, T, num_mel_bins] (or the original's [B, 1, T, num_mel_bins]); every frame is attended to."""
        if input_values.dim() == 4 and input_values.shape[1] == 1:
            input_values = input_values[:, 0]
        if input_values.dim() != 3 or input_values.shape[-1] != self.config.num_mel_bins:
            raise ValueError(
                f"input_values must be a filterbank [batch, frames, {self.config.num_mel_bins}] (use "
                f"EatFeatureExtractor), got shape {tuple(input_values.shape)}"
            )
        if input_values.shape[1] < self.config.patch_size:
            raise ValueError(f"input_values has {input_values.shape[1]} frames; at least {self.config.patch_size} are needed")
        return self.embeddings(input_values)

    def encoder_output(self, hidden: torch.Tensor, all_hidden: tuple | None, all_attentions: tuple | None) -> EatModelOutput:
        return EatModelOutput(
            last_hidden_state=hidden, pooler_output=hidden[:, 0], hidden_states=all_hidden, attentions=all_attentions
        )


class EatForAudioClassification(PooledTokenClassifierMixin, EatPreTrainedModel):
    """EAT fine-tuned head: logits = Linear(fc_norm(CLS)) (fc_norm eps 1e-6); raw logits (sigmoid for AudioSet)."""

    encoder_class = EatModel


class EatForAudioFrameClassification(TokenFrameClassifierMixin, EatPreTrainedModel):
    """Per-time-step logits: patch tokens averaged over their 8 frequency patches, then fc_norm + head (one step
    per 16 frames, `config.frame_rate` = 6.25 per second); or, with `config.sed_head`, the PretrainedSED head."""

    encoder_class = EatModel


__all__ = [
    "EatForAudioClassification",
    "EatForAudioFrameClassification",
    "EatModel",
    "EatPreTrainedModel",
    "sincos_position_table",
]
