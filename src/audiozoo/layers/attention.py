"""The eager attention kernel shared by the encoders (the one that can return attention weights).

Models pick a kernel with ``ALL_ATTENTION_FUNCTIONS.get_interface(config._attn_implementation,
eager_attention_forward)`` (transformers looks for that call to allow ``set_attn_implementation``) and call it
as ``kernel(module, q, k, v, mask, scaling=..., dropout=..., position_bias=...)``
with q/k/v as [B, H, L, D], ``mask`` a bool [B, 1, 1|L, L] (True = attend) or None and an optional additive
float ``position_bias`` [B|1, H, L, L]. They return ([B, L, H, D], weights or None).
"""

from __future__ import annotations

import torch
from torch import nn


def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    position_bias: torch.Tensor | None = None,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(q k^T * scaling + bias, masked keys -> -inf) v, computed in the input dtype, softmax in fp32."""
    scores = torch.matmul(query, key.transpose(-1, -2)) * scaling
    if position_bias is not None:
        scores = scores + position_bias
    if attention_mask is not None:
        scores = scores.masked_fill(~attention_mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    weights = nn.functional.dropout(weights, p=dropout, training=module.training)
    output = torch.matmul(weights, value).transpose(1, 2).contiguous()
    return output, weights
