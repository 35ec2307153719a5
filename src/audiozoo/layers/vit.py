"""Vision-Transformer building blocks shared by the spectrogram ViTs (AST now; EAT, ASiT, M2D, fPaSST next).

Blocks read these config fields: hidden_size, num_attention_heads, intermediate_size, hidden_act, qkv_bias,
layer_norm_eps, attention_dropout, hidden_dropout, and `_attn_implementation` (eager / sdpa).
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import PreTrainedConfig, PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

from .attention import eager_attention_forward
from .remote_code_saving import RemoteCodeSavingMixin
from .sed_head import SedHeadConfigMixin


class ViTEncoderConfig(PreTrainedConfig):
    r"""The transformer fields every spectrogram ViT config shares (AST, EAT, the PretrainedSED encoders).

    Args:
        hidden_size, num_hidden_layers, num_attention_heads, intermediate_size, hidden_act, qkv_bias: the ViT.
        layer_norm_eps: eps of the encoder's LayerNorms (timm: 1e-6).
        hidden_dropout, attention_dropout: 0 in the released models.
        initializer_range: std of the truncated-normal initialisation.
    """

    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    qkv_bias: bool = True
    layer_norm_eps: float = 1e-6
    hidden_dropout: float = 0.0
    attention_dropout: float = 0.0
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be divisible by num_attention_heads ({self.num_attention_heads})"
            )


class FilterbankViTConfig(SedHeadConfigMixin, ViTEncoderConfig):
    r"""The fields AST and EAT share besides the transformer's: a fine-tuned head with its own LayerNorm, square
    patches over a Kaldi filterbank of `max_length` frames, the front end, and the frame classifier's head.

    Args:
        classifier_layer_norm_eps: eps of the head's LayerNorm.
        patch_size: square patch size.
        max_length: input frames.
        num_mel_bins, sampling_rate, frame_shift_ms: the front end the model expects.
        sed_head: settings of the PretrainedSED prediction head for the frame classifier
            (`audiozoo.layers.sed_head.SedHeadSettings`); None: the clip head applied per time step, one step every
            `time_step_frames` filterbank frames.
    """

    classifier_layer_norm_eps: float = 1e-5
    patch_size: int = 16
    max_length: int = 1024
    num_mel_bins: int = 128
    sampling_rate: int = 16000
    frame_shift_ms: float = 10.0
    sed_head: dict | None = None

    @property
    def time_step_frames(self) -> int:
        """Filterbank frames between the frame head's time steps: one patch (a family with a time stride of its own
        overrides this)."""
        return self.patch_size

    @property
    def native_frame_rate(self) -> float:
        """Time steps per second of the frame head (one every `time_step_frames` filterbank frames)."""
        return 1000.0 / (self.time_step_frames * self.frame_shift_ms)


@torch.no_grad()
def init_vit_weights(module: nn.Module, std: float) -> None:
    """timm's ViT initialisation: truncated normal(std) for linears, convolutions and the learned tables a
    module lists in `init_tables`; LayerNorms to identity."""
    if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d)):
        init.trunc_normal_(module.weight, std=std)
        if module.bias is not None:
            init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        init.ones_(module.weight)
        init.zeros_(module.bias)
    for name in getattr(module, "init_tables", ()):
        init.trunc_normal_(getattr(module, name), std=std)


def output_flags(config, output_hidden_states, output_attentions, return_dict) -> tuple[bool, bool, bool]:
    """Call arguments over config defaults, as every transformers model resolves them."""
    return (
        output_hidden_states if output_hidden_states is not None else config.output_hidden_states,
        output_attentions if output_attentions is not None else config.output_attentions,
        return_dict if return_dict is not None else config.return_dict,
    )


def run_blocks(
    layers: nn.ModuleList,
    hidden: torch.Tensor,
    key_mask: torch.Tensor | None = None,
    output_hidden_states: bool = False,
    output_attentions: bool = False,
) -> tuple[torch.Tensor, tuple | None, tuple | None]:
    """Run transformer blocks; return the last output, (input + every block's output) and attention maps on request."""
    all_hidden = (hidden,) if output_hidden_states else None
    all_attentions = () if output_attentions else None
    for layer in layers:
        hidden, weights = layer(hidden, key_mask, output_attentions)
        if output_hidden_states:
            all_hidden += (hidden,)
        if output_attentions:
            all_attentions += (weights,)
    return hidden, all_hidden, all_attentions


class ViTPreTrainedModel(RemoteCodeSavingMixin, PreTrainedModel):
    """What the spectrogram ViTs' pretrained-model classes share (AST, EAT, the PretrainedSED encoders): audio
    `input_values`, gradient checkpointing, SDPA and flash attention, pre-LN blocks kept whole on one device, and
    timm's initialisation (`init_vit_weights`). Families set `config`, `base_model_prefix` and what differs."""

    main_input_name = "input_values"
    input_modalities = ("audio",)
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = False
    _no_split_modules = ["PreNormBlock"]

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """timm's ViT initialisation: truncated normal for linears, convolutions and learned tables."""
        init_vit_weights(module, self.config.initializer_range)


class ViTEncoderMixin:
    """The forward of the spectrogram ViT encoders: `embed` (input -> tokens with positions; the input checks),
    the blocks in `self.layers`, then `encoder_output` (the family's output from the last block's output). A
    family whose encoding is not one pass over the blocks (M2D's chunks) overrides `encode`."""

    def forward(
        self,
        input_values: torch.Tensor,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ):
        """`hidden_states`: the embeddings and every block's output; `attentions` with eager attention only."""
        output_hidden_states, output_attentions, return_dict = output_flags(
            self.config, output_hidden_states, output_attentions, return_dict
        )
        output = self.encode(input_values, output_hidden_states, output_attentions)
        return output if return_dict else output.to_tuple()

    def encode(self, input_values: torch.Tensor, output_hidden_states: bool, output_attentions: bool):
        hidden = self.embed(input_values)
        hidden, all_hidden, all_attentions = run_blocks(self.layers, hidden, None, output_hidden_states, output_attentions)
        return self.encoder_output(hidden, all_hidden, all_attentions)

    def embed(self, input_values: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def encoder_output(self, hidden: torch.Tensor, all_hidden: tuple | None, all_attentions: tuple | None):
        raise NotImplementedError


class PatchEmbedding(nn.Module):
    """[B, 1, H, W] image -> [B, (H' * W'), D] tokens, row-major over (H', W'); separate strides per axis."""

    def __init__(self, hidden_size: int, patch_size: int, stride: tuple[int, int], bias: bool = True):
        super().__init__()
        self.patch_size = patch_size
        self.stride = stride
        self.conv = nn.Conv2d(1, hidden_size, kernel_size=patch_size, stride=stride, bias=bias)

    def grid(self, height: int, width: int) -> tuple[int, int]:
        """Patches along each axis (no padding; trailing rows/columns that do not fill a stride are dropped)."""
        return (height - self.patch_size) // self.stride[0] + 1, (width - self.patch_size) // self.stride[1] + 1

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.conv(image).flatten(2).transpose(1, 2)


class ViTSelfAttention(nn.Module):
    """Multi-head self-attention with a fused qkv projection (timm layout: rows q, k, v) or split ones."""

    def __init__(self, config, fused_qkv: bool = True):
        super().__init__()
        self.config = config
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.scaling = self.head_dim**-0.5
        self.is_causal = False
        self.fused_qkv = fused_qkv
        if fused_qkv:
            self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size, bias=config.qkv_bias)
        else:
            self.q_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=config.qkv_bias)
            self.k_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=config.qkv_bias)
            self.v_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=config.qkv_bias)
        self.out_proj = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(
        self, hidden_states: torch.Tensor, key_mask: torch.Tensor | None = None, output_attentions: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        batch, length, channels = hidden_states.shape
        if self.fused_qkv:
            qkv = self.qkv(hidden_states).view(batch, length, 3, self.num_heads, self.head_dim)
            query, key, value = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        else:
            query, key, value = (
                projection(hidden_states).view(batch, length, self.num_heads, self.head_dim).transpose(1, 2)
                for projection in (self.q_proj, self.k_proj, self.v_proj)
            )
        kernel = ALL_ATTENTION_FUNCTIONS.get_interface(self.config._attn_implementation, eager_attention_forward)
        attended, weights = kernel(
            self,
            query,
            key,
            value,
            key_mask,
            scaling=self.scaling,
            dropout=self.config.attention_dropout if self.training else 0.0,
            output_attentions=output_attentions,
        )
        return self.out_proj(attended.reshape(batch, length, channels)), (weights if output_attentions else None)


class ViTMlp(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.activation = ACT2FN[config.hidden_act]
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)
        self.dropout = nn.Dropout(config.hidden_dropout)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.fc2(self.dropout(self.activation(self.fc1(hidden_states)))))


class PreNormBlock(GradientCheckpointingLayer):
    """timm ViT block: x + attn(LN(x)), then x + mlp(LN(x))."""

    def __init__(self, config, fused_qkv: bool = True):
        super().__init__()
        self.attention_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attention = ViTSelfAttention(config, fused_qkv)
        self.mlp_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = ViTMlp(config)
        self.dropout = nn.Dropout(config.hidden_dropout)

    def forward(
        self, hidden_states: torch.Tensor, key_mask: torch.Tensor | None = None, output_attentions: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        attended, weights = self.attention(self.attention_norm(hidden_states), key_mask, output_attentions)
        hidden_states = hidden_states + self.dropout(attended)
        return hidden_states + self.mlp(self.mlp_norm(hidden_states)), weights


def regrid_position_table(table: torch.Tensor, grid: tuple[int, int], new_grid: tuple[int, int]) -> torch.Tensor:
    """Fit a learned [1, F*T, D] patch position table (row-major over (F, T)) to a new (F', T') grid.

    As AST does: time first, then frequency; an axis that shrinks keeps its middle (start = old // 2 - new // 2),
    an axis that grows is interpolated bilinearly (align_corners=False).
    """
    (rows, columns), (new_rows, new_columns) = grid, new_grid
    if table.shape[1] != rows * columns:
        raise ValueError(f"position table has {table.shape[1]} entries, not {rows} x {columns}")
    image = table.transpose(1, 2).reshape(1, table.shape[2], rows, columns)
    if new_columns <= columns:
        start = columns // 2 - new_columns // 2
        image = image[:, :, :, start : start + new_columns]
    else:
        image = nn.functional.interpolate(image, size=(rows, new_columns), mode="bilinear")
    if new_rows <= rows:
        start = rows // 2 - new_rows // 2
        image = image[:, :, start : start + new_rows, :]
    else:
        image = nn.functional.interpolate(image, size=(new_rows, new_columns), mode="bilinear")
    return image.flatten(2).transpose(1, 2)


class PostNormBlock(GradientCheckpointingLayer):
    """data2vec 2.0 / EAT block (post-LN): x + attn(x), r = LN(x), then LN(r + mlp(r))."""

    def __init__(self, config, fused_qkv: bool = True):
        super().__init__()
        self.attention = ViTSelfAttention(config, fused_qkv)
        self.attention_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = ViTMlp(config)
        self.mlp_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout)

    def forward(
        self, hidden_states: torch.Tensor, key_mask: torch.Tensor | None = None, output_attentions: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        attended, weights = self.attention(hidden_states, key_mask, output_attentions)
        residual = self.attention_norm(hidden_states + self.dropout(attended))
        return self.mlp_norm(residual + self.mlp(residual)), weights


def split_fused_qkv(fused: torch.Tensor, hidden_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """timm's fused qkv weight or bias (rows: q, then k, then v) -> (q, k, v) copies."""
    if fused.shape[0] != 3 * hidden_size:
        raise ValueError(f"a fused qkv tensor has {fused.shape[0]} rows, expected 3 x {hidden_size}")
    return tuple(fused[part * hidden_size : (part + 1) * hidden_size].clone() for part in range(3))
