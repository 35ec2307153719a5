"""BEATs (Chen et al., 2022, arXiv:2212.09058) as transformers models.

Input: the normalised Kaldi filterbank of [`BeatsFeatureExtractor`] ([B, T, 128]) and its frame-level
``attention_mask``. 16x16 patches are flattened TIME-MAJOR (patch p = time step p // 8, mel band p % 8).
The encoder is a post-LN ("deep norm") Transformer with a convolutional positional embedding and a gated,
bucketed relative position bias over the flattened patch index.
"""


import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import ModelOutput
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

from ...layers.attention import eager_attention_forward
from ...layers.classifiers import FrameClassifierMixin, SedHeadClipClassifierMixin
from ...layers.heads import AudioClassifierOutput, AudioFrameClassifierOutput, time_major_patches_to_frames
from ...layers.masking import reduce_valid_mask_by_chunks
from ...layers.remote_code_saving import RemoteCodeSavingMixin
from ...layers.vit import output_flags
from .configuration_beats import BeatsConfig, BeatsTokenizerConfig


@dataclass
class BeatsModelOutput(ModelOutput):
    """Encoder output.

    Args:
        last_hidden_state: [B, P, C] patch tokens, time-major.
        attention_mask: [B, P] bool, True on patches the encoder treated as audio (None without a mask).
        hidden_states: L + 1 tensors [B, P, C]: the encoder input (after the positional convolution and its
            LayerNorm), then every layer's output; the last equals `last_hidden_state`.
        attentions: L tensors [B, H, P, P] (eager attention only).
    """

    last_hidden_state: torch.FloatTensor | None = None
    attention_mask: torch.BoolTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class BeatsTokenizerOutput(ModelOutput):
    """Acoustic tokenizer output.

    Args:
        codebook_ids: [B, P] index of the nearest codebook entry per patch (padded patches get ids too).
        quantizer_input: [B, P, codebook_dim] projection of the encoder output, before l2-normalisation.
        last_hidden_state, attention_mask, hidden_states, attentions: as [`BeatsModelOutput`].
    """

    codebook_ids: torch.LongTensor | None = None
    quantizer_input: torch.FloatTensor | None = None
    last_hidden_state: torch.FloatTensor | None = None
    attention_mask: torch.BoolTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


class _ScaleGradient(torch.autograd.Function):
    """Identity forward, gradient times `scale` backward (the original's layer-wise gradient decay)."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return tensor.view_as(tensor)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad * ctx.scale, None


class BeatsPatchEmbedding(nn.Module):
    """[B, T, M] filterbank -> [B, (T // p) * (M // p), C] time-major patch tokens."""

    def __init__(self, config: BeatsConfig):
        super().__init__()
        self.patch_size = config.patch_size
        self.conv = nn.Conv2d(
            1, config.patch_embed_dim, config.patch_size, stride=config.patch_size, bias=config.patch_embed_bias
        )
        self.layer_norm = nn.LayerNorm(config.patch_embed_dim, eps=config.layer_norm_eps)
        self.projection = (
            nn.Linear(config.patch_embed_dim, config.hidden_size)
            if config.patch_embed_dim != config.hidden_size
            else None
        )
        self.dropout = nn.Dropout(config.input_dropout)

    def forward(self, input_values: torch.Tensor) -> torch.Tensor:
        patches = self.conv(input_values.unsqueeze(1))  # [B, C, T', F'] ; trailing T % p frames dropped
        patches = patches.flatten(2).transpose(1, 2)  # time-major: index = t * F' + f
        patches = self.layer_norm(patches)
        if self.projection is not None:
            patches = self.projection(patches)
        return self.dropout(patches)


class BeatsPositionalConvEmbedding(nn.Module):
    """Grouped, weight-normed 1-D convolution over the patch sequence, "same" length, then GELU."""

    def __init__(self, config: BeatsConfig):
        super().__init__()
        kernel = config.num_conv_pos_embeddings
        self.conv = nn.Conv1d(
            config.hidden_size,
            config.hidden_size,
            kernel_size=kernel,
            padding=kernel // 2,
            groups=config.num_conv_pos_embedding_groups,
        )
        if config.conv_pos_weight_norm:
            self.conv = nn.utils.parametrizations.weight_norm(self.conv, name="weight", dim=2)
        # an even kernel with padding k // 2 yields one extra step, which the original drops at the end
        self.trim = 1 if kernel % 2 == 0 else 0
        self.activation = nn.GELU()

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        conv = self.conv(hidden_states.transpose(1, 2))
        if self.trim:
            conv = conv[:, :, : -self.trim]
        return self.activation(conv).transpose(1, 2)


class BeatsRelativePositionBias(nn.Module):
    """T5-style bidirectional bucketed bias over the flattened patch index, one table shared by all layers."""

    def __init__(self, config: BeatsConfig):
        super().__init__()
        self.num_buckets = config.num_buckets
        self.max_distance = config.max_distance
        self.relative_attention_bias = nn.Embedding(config.num_buckets, config.num_attention_heads)

    def bucket(self, relative_position: torch.Tensor) -> torch.Tensor:
        """Bucket index of each (key - query) offset; the float ops follow the original's order."""
        half = self.num_buckets // 2
        buckets = (relative_position > 0).long() * half
        distance = relative_position.abs()
        max_exact = half // 2
        # clamp keeps log() finite for distances < max_exact, whose far-bucket value is discarded below
        far = max_exact + (
            torch.log(distance.clamp(min=1).float() / max_exact)
            / math.log(self.max_distance / max_exact)
            * (half - max_exact)
        ).long()
        far = far.clamp(max=half - 1)
        return buckets + torch.where(distance < max_exact, distance, far)

    def forward(self, length: int) -> torch.Tensor:
        """[1, H, L, L] bias for a sequence of `length` patches."""
        return offset_bias_rows(self.per_offset(length), 0, length)

    def per_offset(self, length: int) -> torch.Tensor:
        """[H, 2L - 1]: the same bias without the [H, L, L] tensor. It depends only on the offset key - query, so
        the buckets and the table lookup are computed for the 2L - 1 offsets -(L - 1) .. L - 1 (the same values as
        per (query, key) pair); `offset_bias_rows` lays out any block of query rows."""
        device = self.relative_attention_bias.weight.device
        offsets = torch.arange(1 - length, length, device=device)  # key - query
        return self.relative_attention_bias(self.bucket(offsets)).t()


def offset_bias_rows(values: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """[H, 2L - 1] bias per key - query offset -> [1, H, stop - start, L]: the rows of queries start .. stop - 1.

    Row i holds offsets -i .. L - 1 - i, a window of L values; windows in offset order are rows in reverse order.
    """
    length = (values.shape[1] + 1) // 2
    windows = values.unfold(1, length, 1)  # window w: offsets w - (L - 1) .. w = the row of query L - 1 - w
    return windows[:, length - stop : length - start].flip(1).unsqueeze(0)


class BeatsSelfAttention(nn.Module):
    """Multi-head self-attention with the gated relative position bias (gate computed from the unscaled query).

    The bias of query row i is `gate[b, h, i] * position_bias[h, i, :]` (the gate is one number per batch item,
    head and query): a [B, H, L, L] tensor if built whole, in every layer. It is built for a block of query rows
    at a time instead, at most `QUERY_BLOCK_ELEMENTS` elements per block; rows attend independently, so the
    outputs are the same (bit for bit on our CPU runs). On CPU a block's bias and scores stay in cache (60 s clip,
    one thread: eager 22.7 -> 12.5 s, SDPA 14.4 -> 11.6 s, peak memory 1.76 / 0.95 GB -> 0.22 GB); on GPU the
    blocks bound the memory of long clips. `position_bias` is [B | 1, H, L, L], or the encoder's [H, 2L - 1]
    values per key - query offset (see `BeatsRelativePositionBias.per_offset`).
    """

    QUERY_BLOCK_ELEMENTS: ClassVar[dict[str, int]] = {"cpu": 2**20, "default": 2**26}

    def __init__(self, config: BeatsConfig):
        super().__init__()
        self.config = config
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.scaling = self.head_dim**-0.5
        self.dropout = config.attention_dropout
        self.is_causal = False
        self.q_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.k_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.v_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.out_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.gated = config.gated_relative_position_bias
        if self.gated:
            self.gate_proj = nn.Linear(self.head_dim, 8)
            self.gate_scale = nn.Parameter(torch.ones(1, self.num_heads, 1, 1))

    def _heads(self, tensor: torch.Tensor) -> torch.Tensor:
        batch, length, _ = tensor.shape
        return tensor.view(batch, length, self.num_heads, self.head_dim).transpose(1, 2)

    def gate(self, query: torch.Tensor) -> torch.Tensor:
        """[B, H, L, 1]: the factor of each query row's position bias, from the unscaled query of its head."""
        batch, heads, length, _ = query.shape
        gates = torch.sigmoid(self.gate_proj(query).view(batch, heads, length, 2, 4).sum(-1))
        gate_a, gate_b = gates.chunk(2, dim=-1)
        return gate_a * (gate_b * self.gate_scale - 1.0) + 2.0

    def query_block_rows(self, query: torch.Tensor, key_length: int) -> int:
        budget = self.QUERY_BLOCK_ELEMENTS.get(query.device.type, self.QUERY_BLOCK_ELEMENTS["default"])
        return max(1, budget // (query.shape[0] * query.shape[1] * key_length))

    def forward(
        self,
        hidden_states: torch.Tensor,
        key_mask: torch.Tensor | None = None,
        position_bias: torch.Tensor | None = None,
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        batch, length, channels = hidden_states.shape
        query = self._heads(self.q_proj(hidden_states))
        key = self._heads(self.k_proj(hidden_states))
        value = self._heads(self.v_proj(hidden_states))
        kernel = ALL_ATTENTION_FUNCTIONS.get_interface(self.config._attn_implementation, eager_attention_forward)
        dropout = self.dropout if self.training else 0.0

        if position_bias is None:
            attended, weights = kernel(
                self, query, key, value, key_mask, scaling=self.scaling, dropout=dropout,
                output_attentions=output_attentions,
            )
            attended = attended.reshape(batch, length, channels)
            return self.out_proj(attended), (weights if output_attentions else None)

        gate = self.gate(query) if self.gated else None
        # lay the heads out once, not once per block of queries
        query, key, value = query.contiguous(), key.contiguous(), value.contiguous()
        if position_bias.dim() == 2:
            # [H, 2L - 1] per-offset values (the encoder's form): the bias row of query i is window L - 1 - i of
            # the values, so walking the queries from the last one, a block of rows is a slice of the windows
            # (a view: no [H, L, L] tensor, no copy); the outputs are put back in order at the end
            reverse = True
            windows = position_bias.unfold(1, length, 1).unsqueeze(0)
            query, gate = query.flip(2), (gate.flip(2) if gate is not None else None)
        else:
            reverse, windows = False, position_bias
        # kernels other than eager take the key mask folded into the additive bias (what transformers' SDPA
        # kernel would build from the two anyway: the bias, and the dtype's minimum on padded keys)
        fold_mask = key_mask is not None and kernel is not eager_attention_forward
        rows = self.query_block_rows(query, key.shape[2])
        attended = query.new_empty(batch, length, self.num_heads, self.head_dim)
        blocks_of_weights = []
        for start in range(0, length, rows):
            block = slice(start, min(start + rows, length))
            bias = windows[:, :, block]
            if gate is not None:
                # gate * bias, laid out row-major (a plain product would follow the windows' overlapping layout,
                # which the kernels then copy)
                shape = (batch, self.num_heads, block.stop - block.start, key.shape[2])
                gated = bias.new_empty(shape, dtype=torch.promote_types(gate.dtype, bias.dtype))
                bias = gated.copy_(bias).mul_(gate[:, :, block])
            bias = bias.to(query.dtype)
            if fold_mask:  # in place where `bias` is this block's own tensor
                minimum = torch.finfo(bias.dtype).min
                bias = bias.masked_fill_(~key_mask, minimum) if gate is not None else torch.where(key_mask, bias, minimum)
            attended[:, block], weights = kernel(
                self, query[:, :, block], key, value, None if fold_mask else key_mask, scaling=self.scaling,
                dropout=dropout, position_bias=bias, output_attentions=output_attentions,
            )
            if output_attentions:
                blocks_of_weights.append(weights)
        weights = None
        if output_attentions and all(block is not None for block in blocks_of_weights):
            weights = torch.cat(blocks_of_weights, dim=2)
            weights = weights.flip(2) if reverse else weights
        attended = attended.flip(1) if reverse else attended
        return self.out_proj(attended.reshape(batch, length, channels)), weights


class BeatsFeedForward(nn.Module):
    def __init__(self, config: BeatsConfig):
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.activation = nn.Identity() if config.hidden_act == "linear" else ACT2FN[config.hidden_act]
        self.activation_dropout = nn.Dropout(config.activation_dropout)
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)
        self.output_dropout = nn.Dropout(config.hidden_dropout)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = self.activation_dropout(self.activation(self.fc1(hidden_states)))
        return self.output_dropout(self.fc2(hidden_states))


class BeatsEncoderLayer(GradientCheckpointingLayer):
    """Post-LN layer with deep-norm residual scaling (released models) or a pre-LN layer (layer_norm_first)."""

    def __init__(self, config: BeatsConfig):
        super().__init__()
        self.layer_norm_first = config.layer_norm_first
        self.residual_scale = (2.0 * config.num_hidden_layers) ** 0.25 if config.deep_norm else 1.0
        self.attention = BeatsSelfAttention(config)
        self.attention_dropout = nn.Dropout(config.hidden_dropout)
        self.attention_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.feed_forward = BeatsFeedForward(config)
        self.final_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(
        self,
        hidden_states: torch.Tensor,
        key_mask: torch.Tensor | None = None,
        position_bias: torch.Tensor | None = None,
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.layer_norm_first:
            attended, weights = self.attention(
                self.attention_layer_norm(hidden_states), key_mask, position_bias, output_attentions
            )
            hidden_states = hidden_states + self.attention_dropout(attended)
            hidden_states = hidden_states + self.feed_forward(self.final_layer_norm(hidden_states))
            return hidden_states, weights
        attended, weights = self.attention(hidden_states, key_mask, position_bias, output_attentions)
        hidden_states = self.attention_layer_norm(hidden_states * self.residual_scale + self.attention_dropout(attended))
        hidden_states = self.final_layer_norm(hidden_states * self.residual_scale + self.feed_forward(hidden_states))
        return hidden_states, weights


class BeatsEncoder(nn.Module):
    def __init__(self, config: BeatsConfig):
        super().__init__()
        self.config = config
        self.pos_conv_embed = BeatsPositionalConvEmbedding(config)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout)
        self.relative_position_bias = (
            BeatsRelativePositionBias(config) if config.relative_position_embedding else None
        )
        self.layers = nn.ModuleList([BeatsEncoderLayer(config) for _ in range(config.num_hidden_layers)])

    def forward(
        self,
        hidden_states: torch.Tensor,
        valid_mask: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, tuple | None, tuple | None]:
        if valid_mask is not None:
            hidden_states = hidden_states.masked_fill(~valid_mask.unsqueeze(-1), 0.0)
        hidden_states = hidden_states + self.pos_conv_embed(hidden_states)
        if not self.config.layer_norm_first:
            hidden_states = self.layer_norm(hidden_states)
        hidden_states = self.dropout(hidden_states)

        length = hidden_states.shape[1]
        # computed once for all layers (as the original), and kept as its 2L - 1 values per head
        position_bias = self.relative_position_bias.per_offset(length) if self.relative_position_bias is not None else None
        key_mask = valid_mask[:, None, None, :] if valid_mask is not None else None
        decay = self.config.layer_wise_gradient_decay_ratio

        all_hidden = [hidden_states] if output_hidden_states else None
        all_attentions = [] if output_attentions else None
        for layer in self.layers:
            if decay != 1.0 and torch.is_grad_enabled():
                hidden_states = _ScaleGradient.apply(hidden_states, decay)
            if self.training and self.config.layerdrop > 0 and torch.rand(()) < self.config.layerdrop:
                skipped = True
            else:
                skipped = False
                hidden_states, weights = layer(hidden_states, key_mask, position_bias, output_attentions)
            if output_hidden_states:
                all_hidden.append(hidden_states)
            if output_attentions:
                all_attentions.append(None if skipped else weights)

        if self.config.layer_norm_first:
            hidden_states = self.layer_norm(hidden_states)
            if output_hidden_states:
                all_hidden[-1] = hidden_states
        return (
            hidden_states,
            tuple(all_hidden) if output_hidden_states else None,
            tuple(all_attentions) if output_attentions else None,
        )


class BeatsPreTrainedModel(RemoteCodeSavingMixin, PreTrainedModel):
    config: BeatsConfig
    base_model_prefix = "beats"
    main_input_name = "input_values"
    input_modalities = ("audio",)
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = False  # the query-dependent bias needs a float mask
    _supports_flex_attn = False
    _no_split_modules = ["BeatsEncoderLayer"]

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """Initialise like the original before training: N(0, 0.02) linears/embeddings, the conv as fairseq."""
        std = self.config.initializer_range
        if isinstance(module, (nn.Linear, nn.Embedding)):
            init.normal_(module.weight, mean=0.0, std=std)
            if getattr(module, "bias", None) is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, BeatsPositionalConvEmbedding):
            conv = module.conv
            fan = conv.kernel_size[0] * conv.in_channels
            if hasattr(conv, "parametrizations"):
                init.normal_(conv.parametrizations.weight.original1, mean=0.0, std=math.sqrt(4.0 / fan))
                init.ones_(conv.parametrizations.weight.original0)
            else:
                init.normal_(conv.weight, mean=0.0, std=math.sqrt(4.0 / fan))
            init.zeros_(conv.bias)
        elif isinstance(module, nn.Conv2d):
            init.kaiming_normal_(module.weight)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, BeatsSelfAttention) and module.gated:
            init.ones_(module.gate_scale)
        elif isinstance(module, BeatsVectorQuantizer):
            init.copy_(module.codebook, nn.functional.normalize(torch.randn_like(module.codebook), dim=-1))
            init.zeros_(module.ema_cluster_size)
            init.copy_(module.ema_embed_sum, module.codebook)
            init.zeros_(module.usage_count)


class _BeatsEncoderForward:
    """The forward of the models that return the encoder's outputs (the encoder, the tokenizer): `encode` does the
    work."""

    def forward(
        self,
        input_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ):
        """
        Args:
            input_values: [B, T, num_mel_bins] normalised filterbank.
            attention_mask: [B, T] frame mask, 1 on frames computed from real audio, reduced to patches
                by `config.padding_mask_rule` (by default as the original: a patch is padding only if all of
                its chunk of frames is).
        """
        output_hidden_states, output_attentions, return_dict = output_flags(
            self.config, output_hidden_states, output_attentions, return_dict
        )
        output = self.encode(input_values, attention_mask, output_hidden_states, output_attentions)
        return output if return_dict else output.to_tuple()


class BeatsModel(_BeatsEncoderForward, BeatsPreTrainedModel):
    """The BEATs encoder: filterbank -> time-major patch tokens [B, P, C]."""

    def __init__(self, config: BeatsConfig):
        super().__init__(config)
        self.patch_embedding = BeatsPatchEmbedding(config)
        self.encoder = BeatsEncoder(config)
        self.post_init()

    def _check_input(self, input_values: torch.Tensor, attention_mask: torch.Tensor | None) -> None:
        if input_values.dim() != 3 or input_values.shape[-1] != self.config.num_mel_bins:
            raise ValueError(
                f"input_values must be a filterbank [batch, frames, {self.config.num_mel_bins}] (use "
                f"BeatsFeatureExtractor on the waveform), got shape {tuple(input_values.shape)}"
            )
        if input_values.shape[1] < self.config.min_num_frames:
            raise ValueError(
                f"input_values has {input_values.shape[1]} frames; at least {self.config.min_num_frames} are "
                "needed to form one patch"
            )
        if attention_mask is not None and attention_mask.shape != input_values.shape[:2]:
            raise ValueError(
                f"attention_mask must be frame-level [batch, frames] = {tuple(input_values.shape[:2])}, "
                f"got {tuple(attention_mask.shape)}"
            )

    def frame_features(self, encoded: BeatsModelOutput) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Per-time-step features [B, T', C] (patches averaged over frequency, valid ones only) and their mask."""
        return time_major_patches_to_frames(
            encoded.last_hidden_state, self.config.num_frequency_patches, encoded.attention_mask
        )

    def patch_mask(self, frame_mask: torch.Tensor, num_patches: int) -> torch.Tensor:
        """[B, T] frame mask -> [B, P] patch mask under `config.padding_mask_rule`."""
        if self.config.padding_mask_rule == "original":
            return reduce_valid_mask_by_chunks(frame_mask, num_patches)
        bands = self.config.num_frequency_patches
        steps = num_patches // bands
        size = self.config.patch_size
        valid_steps = frame_mask[:, : steps * size].reshape(frame_mask.shape[0], steps, size).all(dim=-1)
        return valid_steps.repeat_interleave(bands, dim=1)

    def encode(
        self, input_values: torch.Tensor, attention_mask: torch.Tensor | None, output_hidden_states: bool,
        output_attentions: bool,
    ) -> BeatsModelOutput:
        self._check_input(input_values, attention_mask)
        tokens = self.patch_embedding(input_values)
        valid_mask = None
        if attention_mask is not None:
            valid_mask = self.patch_mask(attention_mask.bool(), tokens.shape[1])
        last, hidden_states, attentions = self.encoder(tokens, valid_mask, output_hidden_states, output_attentions)
        return BeatsModelOutput(
            last_hidden_state=last, attention_mask=valid_mask, hidden_states=hidden_states, attentions=attentions
        )


def pool_patch_logits(patch_logits: torch.Tensor, valid_mask: torch.Tensor | None) -> torch.Tensor:
    """Clip logits as the original fine-tuned head computes them.

    The mean is over valid patches only if the batch has any padding at all; otherwise a plain mean
    (the same value up to rounding, but this is the original's branch, kept for exactness).
    """
    if valid_mask is not None and not bool(valid_mask.all()):
        summed = patch_logits.masked_fill(~valid_mask.unsqueeze(-1), 0.0).sum(dim=1)
        return summed / valid_mask.sum(dim=1, keepdim=True).to(patch_logits.dtype)
    return patch_logits.mean(dim=1)


class _BeatsPatchClassifier:
    """The original fine-tuned predictor: dropout and a linear classifier on every patch."""

    encoder_class = BeatsModel

    def _init_classifier(self, config: BeatsConfig) -> None:
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)

    def _patch_logits(self, encoded: BeatsModelOutput) -> torch.Tensor:
        return self.classifier(self.dropout(encoded.last_hidden_state))

    def _clip_logits(self, encoded: BeatsModelOutput) -> dict:
        patch_logits = self._patch_logits(encoded)
        return {
            "logits": pool_patch_logits(patch_logits, encoded.attention_mask),
            "patch_logits": patch_logits,
            "attention_mask": encoded.attention_mask,
        }

    def _frame_logits(self, encoded: BeatsModelOutput) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        patch_logits = self._patch_logits(encoded)
        # the classifier is linear: averaging its per-patch logits equals classifying the averaged patches
        frame_logits, frame_mask = time_major_patches_to_frames(
            patch_logits, self.config.num_frequency_patches, encoded.attention_mask
        )
        return frame_logits, pool_patch_logits(patch_logits, encoded.attention_mask), frame_mask


class BeatsForAudioClassification(_BeatsPatchClassifier, SedHeadClipClassifierMixin, BeatsPreTrainedModel):
    """BEATs with the original fine-tuned head: a linear classifier per patch, averaged over valid patches. With
    `config.sed_head` set (a converted PretrainedSED BEATs student), the PretrainedSED head's clip (weak) logits
    instead: exactly [`BeatsForAudioFrameClassification`]'s `clip_logits`, from the same weights.

    Returns logits (apply a sigmoid for the multi-label AudioSet checkpoints; the pipeline does).
    """

    # the SED head when configured, else the per-patch classifier (which comes first in the bases for the frame model)
    _clip_logits = SedHeadClipClassifierMixin._clip_logits
    _own_clip_logits = _BeatsPatchClassifier._clip_logits

    def forward(
        self,
        input_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> AudioClassifierOutput | tuple:
        """`labels`: [B] class ids (single-label) or [B, C] floats (multi-label), per `config.problem_type`."""
        return self._classify_clip(
            input_values, labels, return_dict, kwargs, attention_mask=attention_mask,
            output_hidden_states=output_hidden_states, output_attentions=output_attentions,
        )


class BeatsForAudioFrameClassification(_BeatsPatchClassifier, FrameClassifierMixin, BeatsPreTrainedModel):
    """Per-time-step logits, from one of two heads.

    - `config.sed_head` None: the per-patch classifier averaged over the frequency patches of each time step.
      One step spans `patch_size` filterbank frames (160 ms for the released models): `config.frame_rate`
      steps per second. Loaded from a fine-tuned checkpoint, the classifier is the original predictor, so
      `clip_logits` equal [`BeatsForAudioClassification`]'s logits.
    - `config.sed_head` set: the PretrainedSED prediction head (`audiozoo.layers.sed_head`) on the patch tokens (as the
      BEATs SED models) or on the per-time-step features, `seq_len` frames per window.
    """

    def forward(
        self,
        input_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        clip_labels: torch.Tensor | None = None,
        frame_mask: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> AudioFrameClassifierOutput | tuple:
        """`labels`: float frame targets [B, T', C]; `clip_labels`: optional [B, C]; `frame_mask` [B, T'] (SED
        head only; the patch head derives it from `attention_mask`)."""
        return self._classify_frames(
            input_values, labels, clip_labels, frame_mask, return_dict, attention_mask=attention_mask,
            output_hidden_states=output_hidden_states, output_attentions=output_attentions,
        )


class BeatsVectorQuantizer(nn.Module):
    """Nearest codebook entry of the l2-normalised input (the original NormEMAVectorQuantizer at inference).

    `ema_cluster_size`, `ema_embed_sum` and `usage_count` are the original's EMA training statistics, kept so
    that tokenizer training can resume from a converted checkpoint.
    """

    def __init__(self, codebook_size: int, codebook_dim: int):
        super().__init__()
        self.register_buffer("codebook", torch.zeros(codebook_size, codebook_dim))
        self.register_buffer("ema_cluster_size", torch.zeros(codebook_size))
        self.register_buffer("ema_embed_sum", torch.zeros(codebook_size, codebook_dim))
        self.register_buffer("usage_count", torch.zeros(codebook_size))

    def forward(self, quantizer_input: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[..., D] -> (codebook ids [...], quantized vectors [..., D])."""
        normalised = nn.functional.normalize(quantizer_input, dim=-1)
        flat = normalised.reshape(-1, normalised.shape[-1])
        codebook = self.codebook.to(flat.dtype)
        # full squared distance (not just the dot product): stored codebooks need not be exactly unit-norm
        distance = flat.pow(2).sum(1, keepdim=True) + codebook.pow(2).sum(1) - 2 * flat @ codebook.t()
        ids = distance.argmin(dim=1)
        return ids.view(normalised.shape[:-1]), codebook[ids].view(normalised.shape)


class BeatsTokenizerModel(_BeatsEncoderForward, BeatsPreTrainedModel):
    """BEATs acoustic tokenizer: encoder -> Linear/Tanh/Linear -> nearest codebook entry per patch."""

    config: BeatsTokenizerConfig

    def __init__(self, config: BeatsTokenizerConfig):
        super().__init__(config)
        self.beats = BeatsModel(config)
        self.quantizer_projection = nn.Sequential(
            nn.Linear(config.hidden_size, config.hidden_size),
            nn.Tanh(),
            nn.Linear(config.hidden_size, config.codebook_dim),
        )
        self.quantizer = BeatsVectorQuantizer(config.codebook_size, config.codebook_dim)
        self.post_init()

    def frame_features(self, encoded: BeatsTokenizerOutput) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Per-time-step encoder features, as [`BeatsModel.frame_features`]."""
        return self.beats.frame_features(encoded)

    def encode(
        self, input_values: torch.Tensor, attention_mask: torch.Tensor | None, output_hidden_states: bool,
        output_attentions: bool,
    ) -> BeatsTokenizerOutput:
        encoded = self.beats(input_values, attention_mask, output_hidden_states, output_attentions, return_dict=True)
        quantizer_input = self.quantizer_projection(encoded.last_hidden_state)
        codebook_ids, _ = self.quantizer(quantizer_input)
        return BeatsTokenizerOutput(codebook_ids=codebook_ids, quantizer_input=quantizer_input, **encoded)


__all__ = [
    "BeatsTokenizerModel",
    "BeatsForAudioClassification",
    "BeatsForAudioFrameClassification",
    "BeatsModel",
    "BeatsModelOutput",
    "BeatsPreTrainedModel",
    "BeatsTokenizerOutput",
    "pool_patch_logits",
]
