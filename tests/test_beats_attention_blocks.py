"""BEATs' gated relative position bias without the [B, H, L, L] tensor (issue 15).

The encoder keeps the bias as its 2L - 1 values per key - query offset, and each layer builds the gated bias
for a block of query rows at a time. These tests compare it with the previous computation, kept here verbatim:
the bias looked up per (query, key) pair as one [1, H, L, L] tensor, gated as a whole [B, H, L, L] tensor in
every layer.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

from audiozoo import (
    BeatsConfig,
    BeatsFeatureExtractor,
    BeatsForAudioClassification,
    BeatsModel,
)
from audiozoo.layers.attention import eager_attention_forward
from audiozoo.models.beats.modeling_beats import (
    BeatsRelativePositionBias,
    BeatsSelfAttention,
    offset_bias_rows,
)

# the parity tolerance of the BEATs cases (tests/fixtures/parity/beats_*/case.json)
PARITY = {"atol": 1e-4, "rtol": 1e-4}


def previous_bias(module: BeatsRelativePositionBias, length: int) -> torch.Tensor:
    """The previous BeatsRelativePositionBias.forward: a bucket and a table lookup per (query, key) pair."""
    positions = torch.arange(length, device=module.relative_attention_bias.weight.device)
    relative = positions[None, :] - positions[:, None]
    return module.relative_attention_bias(module.bucket(relative)).permute(2, 0, 1).unsqueeze(0)


def previous_attention(self, hidden_states, key_mask=None, position_bias=None, output_attentions=False):
    """The previous BeatsSelfAttention.forward: the gated bias materialised as [B, H, L, L]."""
    batch, length, channels = hidden_states.shape
    query = self._heads(self.q_proj(hidden_states))
    key = self._heads(self.k_proj(hidden_states))
    value = self._heads(self.v_proj(hidden_states))
    bias = position_bias
    if position_bias is not None and self.gated:
        gates = torch.sigmoid(self.gate_proj(query).view(batch, self.num_heads, length, 2, 4).sum(-1))
        gate_a, gate_b = gates.chunk(2, dim=-1)
        bias = (gate_a * (gate_b * self.gate_scale - 1.0) + 2.0) * position_bias
    if bias is not None:
        bias = bias.to(query.dtype)
    kernel = ALL_ATTENTION_FUNCTIONS.get_interface(self.config._attn_implementation, eager_attention_forward)
    attended, weights = kernel(
        self, query, key, value, key_mask, scaling=self.scaling, dropout=self.dropout if self.training else 0.0,
        position_bias=bias, output_attentions=output_attentions,
    )
    attended = attended.reshape(batch, length, channels)
    return self.out_proj(attended), (weights if output_attentions else None)


@pytest.fixture
def previous_computation(monkeypatch):
    """Within the block, BEATs models compute the bias as before."""

    def use_previous():
        monkeypatch.setattr(BeatsRelativePositionBias, "per_offset", previous_bias)
        monkeypatch.setattr(BeatsSelfAttention, "forward", previous_attention)

    return use_previous


def waveforms(*seconds: float, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(0.1 * rng.standard_normal(int(s * 16000))).astype(np.float32) for s in seconds]


def released_width(**overrides) -> BeatsConfig:
    """The released architecture (768 wide, 12 heads, 320 buckets up to 800 patches), two layers."""
    return BeatsConfig(**{"num_hidden_layers": 2, "layerdrop": 0.0, **overrides})


@pytest.mark.parametrize("length", [1, 2, 3, 17, 496, 1496, 2992])
def test_per_offset_bias_equals_the_per_pair_lookup(length):
    torch.manual_seed(0)
    module = BeatsRelativePositionBias(BeatsConfig())
    expected = previous_bias(module, length)
    values = module.per_offset(length)
    assert values.shape == (12, 2 * length - 1)
    assert torch.equal(module(length), expected)
    for start, stop in [(0, length), (0, 1), (length - 1, length), (length // 3, (2 * length) // 3 + 1)]:
        assert torch.equal(offset_bias_rows(values, start, stop), expected[:, :, start:stop])


@pytest.mark.parametrize("attention", ["eager", "sdpa"])
@pytest.mark.parametrize("seconds", [10.0, 30.0])
def test_long_clips_equal_the_materialised_bias(seconds, attention, previous_computation):
    """A padded batch of two clips (keys masked) at 10 / 30 s: every hidden state as before."""
    torch.manual_seed(0)
    model = BeatsModel(released_width()).eval()
    model.set_attn_implementation(attention)
    inputs = BeatsFeatureExtractor()(waveforms(seconds, seconds * 0.6), sampling_rate=16000)
    assert "attention_mask" in inputs
    with torch.no_grad():
        blocked = model(**inputs, output_hidden_states=True)
        previous_computation()
        materialised = model(**inputs, output_hidden_states=True)
    assert blocked.last_hidden_state.shape[1] == {10.0: 496, 30.0: 1496}[seconds]
    for new, old in zip(blocked.hidden_states, materialised.hidden_states):
        torch.testing.assert_close(new, old, **PARITY)


@pytest.mark.parametrize("attention", ["eager", "sdpa"])
def test_many_uneven_blocks_gradients_and_attention_weights(attention, previous_computation, monkeypatch):
    """Blocks of 7 query rows (the last one shorter), with a mask, in training mode: outputs, attention weights
    (eager) and every gradient, the relative position table's included, as before."""
    monkeypatch.setattr(BeatsSelfAttention, "QUERY_BLOCK_ELEMENTS", {"cpu": 2 * 4 * 7 * 48, "default": 1})
    config = BeatsConfig(num_hidden_layers=2, hidden_size=32, num_attention_heads=4, intermediate_size=64,
                         patch_embed_dim=24, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
                         layerdrop=0.0, num_labels=3)
    inputs = BeatsFeatureExtractor()(waveforms(1.0, 0.6, seed=1), sampling_rate=16000)  # 48 patches
    results = []
    for use_previous in (False, True):
        if use_previous:
            previous_computation()
        torch.manual_seed(0)
        model = BeatsForAudioClassification(config).train()
        model.set_attn_implementation(attention)
        output = model(**inputs, output_attentions=attention == "eager")
        assert model.beats.encoder.layers[0].attention.query_block_rows(torch.zeros(2, 4, 48, 8), 48) == 7
        output.logits.pow(2).sum().backward()
        gradients = {name: parameter.grad.clone() for name, parameter in model.named_parameters()
                     if parameter.grad is not None}
        results.append((output, gradients))
    (new, new_gradients), (old, old_gradients) = results
    torch.testing.assert_close(new.logits, old.logits, **PARITY)
    if attention == "eager":
        for new_weights, old_weights in zip(new.attentions, old.attentions):
            assert new_weights.shape == (2, 4, 48, 48)
            torch.testing.assert_close(new_weights, old_weights, **PARITY)
    assert new_gradients.keys() == old_gradients.keys()
    assert "beats.encoder.relative_position_bias.relative_attention_bias.weight" in new_gradients
    for name in new_gradients:
        torch.testing.assert_close(new_gradients[name], old_gradients[name], atol=1e-5, rtol=1e-4, msg=name)


def test_ungated_and_full_bias_forms():
    """Ungated models, and a full [B, H, L, L] bias (what BEATs pre-training passes the layers) still work."""
    torch.manual_seed(0)
    config = released_width(num_hidden_layers=1, gated_relative_position_bias=False)
    model = BeatsModel(config).eval()
    hidden = torch.randn(2, 40, 768)
    layer = model.encoder.layers[0]
    bias_module = model.encoder.relative_position_bias
    mask = torch.ones(2, 1, 1, 40, dtype=torch.bool)
    mask[1, ..., 30:] = False
    with torch.no_grad():
        expected = previous_attention(layer.attention, hidden, mask, previous_bias(bias_module, 40))[0]
        for attention in ("eager", "sdpa"):
            model.set_attn_implementation(attention)
            per_offset = layer.attention(hidden, mask, bias_module.per_offset(40))[0]
            full = layer.attention(hidden, mask, previous_bias(bias_module, 40).expand(2, -1, -1, -1))[0]
            torch.testing.assert_close(per_offset, expected, **PARITY)
            torch.testing.assert_close(full, expected, **PARITY)
