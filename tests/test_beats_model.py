"""BEATs models on a tiny random config: round trip, Auto classes, batching, attention kernels, heads, training."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import (
    AutoConfig,
    AutoFeatureExtractor,
    AutoModel,
    AutoModelForAudioClassification,
    AutoModelForAudioFrameClassification,
)

from audiozoo import (
    BeatsTokenizerModel,
    BeatsConfig,
    BeatsFeatureExtractor,
    BeatsForAudioClassification,
    BeatsForAudioFrameClassification,
    BeatsModel,
    BeatsTokenizerConfig,
)

TINY = dict(
    num_hidden_layers=2,
    hidden_size=32,
    num_attention_heads=4,
    intermediate_size=64,
    patch_embed_dim=24,
    num_conv_pos_embeddings=16,
    num_conv_pos_embedding_groups=4,
    layerdrop=0.0,
)


def tiny_config(**overrides) -> BeatsConfig:
    return BeatsConfig(**{**TINY, **overrides})


def clips(*seconds: float, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(0.1 * rng.standard_normal(int(s * 16000))).astype(np.float32) for s in seconds]


@pytest.fixture(scope="module")
def feature_extractor() -> BeatsFeatureExtractor:
    return BeatsFeatureExtractor()


def test_save_load_round_trip_and_auto_classes(tmp_path, feature_extractor):
    torch.manual_seed(0)
    config = tiny_config(id2label={0: "a", 1: "b", 2: "c"}, problem_type="multi_label_classification")
    model = BeatsForAudioClassification(config).eval()
    model.save_pretrained(tmp_path)
    feature_extractor.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()

    assert type(AutoConfig.from_pretrained(tmp_path)) is BeatsConfig
    assert type(AutoFeatureExtractor.from_pretrained(tmp_path)) is BeatsFeatureExtractor
    reloaded = AutoModelForAudioClassification.from_pretrained(tmp_path, dtype=torch.float32).eval()
    assert type(reloaded) is BeatsForAudioClassification
    assert type(AutoModel.from_pretrained(tmp_path, dtype=torch.float32)) is BeatsModel
    frame_model = AutoModelForAudioFrameClassification.from_pretrained(tmp_path, dtype=torch.float32)
    assert type(frame_model) is BeatsForAudioFrameClassification

    inputs = AutoFeatureExtractor.from_pretrained(tmp_path)(clips(1.0), sampling_rate=16000)
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**inputs).logits, model(**inputs).logits, atol=0, rtol=0)
        # the frame head reuses the classifier: its clip logits equal the clip head's
        torch.testing.assert_close(frame_model.eval()(**inputs).clip_logits, model(**inputs).logits, atol=1e-6, rtol=0)


def test_tokenizer_auto_class_round_trip(tmp_path, feature_extractor):
    torch.manual_seed(0)
    model = BeatsTokenizerModel(BeatsTokenizerConfig(**TINY, codebook_size=16, codebook_dim=8)).eval()
    norms = model.quantizer.codebook.norm(dim=-1)
    torch.testing.assert_close(norms, torch.ones_like(norms))  # freshly initialised codebook is unit-norm
    model.save_pretrained(tmp_path)
    reloaded = AutoModel.from_pretrained(tmp_path, dtype=torch.float32).eval()
    assert type(reloaded) is BeatsTokenizerModel
    inputs = feature_extractor(clips(1.0), sampling_rate=16000)
    with torch.no_grad():
        assert torch.equal(reloaded(**inputs).codebook_ids, model(**inputs).codebook_ids)
    assert torch.equal(reloaded.quantizer.codebook, model.quantizer.codebook)


@pytest.mark.parametrize("model_class", [BeatsModel, BeatsForAudioClassification])
def test_eager_and_sdpa_agree(model_class, feature_extractor):
    torch.manual_seed(0)
    model = model_class(tiny_config()).eval()
    inputs = feature_extractor(clips(2.0, 1.3), sampling_rate=16000)
    assert "attention_mask" in inputs
    outputs = {}
    for attention in ("eager", "sdpa"):
        model.set_attn_implementation(attention)
        with torch.no_grad():
            outputs[attention] = model(**inputs)[0]
    torch.testing.assert_close(outputs["eager"], outputs["sdpa"], atol=1e-5, rtol=0)


def test_bfloat16_eager_and_sdpa_stay_close_to_float32(feature_extractor):
    """bf16 tolerance as transformers' own tests: atol max(1e-2, 3e-2 * max |output|)."""
    torch.manual_seed(0)
    model = BeatsModel(tiny_config()).eval()
    inputs = feature_extractor(clips(2.0, 1.3), sampling_rate=16000)
    with torch.no_grad():
        reference = model(**inputs).last_hidden_state
    model = model.to(torch.bfloat16)
    tolerance = max(1e-2, 3e-2 * float(reference.abs().max()))
    for attention in ("eager", "sdpa"):
        model.set_attn_implementation(attention)
        with torch.no_grad():
            output = model(input_values=inputs["input_values"].bfloat16(), attention_mask=inputs["attention_mask"])
        assert output.last_hidden_state.dtype == torch.bfloat16
        valid = output.attention_mask
        difference = (output.last_hidden_state.float() - reference)[valid].abs().max()
        assert difference < tolerance, (attention, float(difference))


def test_attentions_and_hidden_states_counts(feature_extractor):
    torch.manual_seed(0)
    model = BeatsModel(tiny_config()).eval()
    model.set_attn_implementation("eager")
    inputs = feature_extractor(clips(1.0), sampling_rate=16000)
    with torch.no_grad():
        out = model(**inputs, output_attentions=True, output_hidden_states=True)
    patches = out.last_hidden_state.shape[1]
    assert len(out.attentions) == 2 and out.attentions[0].shape == (1, 4, patches, patches)
    torch.testing.assert_close(out.attentions[0].sum(-1), torch.ones(1, 4, patches))
    assert len(out.hidden_states) == 3 and torch.equal(out.hidden_states[-1], out.last_hidden_state)
    as_tuple = model(**inputs, return_dict=False)
    assert isinstance(as_tuple, tuple) and torch.equal(as_tuple[0], out.last_hidden_state)


def test_padded_keys_get_no_attention(feature_extractor):
    torch.manual_seed(0)
    model = BeatsModel(tiny_config()).eval()
    model.set_attn_implementation("eager")
    inputs = feature_extractor(clips(2.0, 1.0), sampling_rate=16000)
    with torch.no_grad():
        out = model(**inputs, output_attentions=True)
    padded = ~out.attention_mask[1]
    assert padded.any()
    assert out.attentions[0][1][..., padded].abs().max() == 0


def _alone_and_batched(model, feature_extractor, long_clip, short_clip):
    alone = feature_extractor([short_clip], sampling_rate=16000)
    batch = feature_extractor([long_clip, short_clip], sampling_rate=16000)
    with torch.no_grad():
        return model(**alone), model(**batch)


def test_clip_alone_equals_clip_in_padded_batch_exact_rule():
    """With padding_mask_rule="exact", a clip alone and right-padded in a batch agree on its patches."""
    torch.manual_seed(0)
    model = BeatsForAudioClassification(tiny_config(id2label={0: "a", 1: "b"}, padding_mask_rule="exact")).eval()
    feature_extractor = BeatsFeatureExtractor(padding_mask_rule="exact")
    for long_seconds, short_seconds in [(3.0, 2.2), (2.0, 1.37), (1.5, 0.9)]:
        single, batched = _alone_and_batched(model, feature_extractor, *clips(long_seconds, short_seconds, seed=3))
        num_alone = single.patch_logits.shape[1]
        valid = batched.attention_mask[1]
        assert int(valid.sum()) == num_alone and bool(valid[:num_alone].all())
        torch.testing.assert_close(batched.patch_logits[1, :num_alone], single.patch_logits[0], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(batched.logits[1], single.logits[0], atol=1e-5, rtol=1e-5)


def test_clip_alone_equals_clip_in_padded_batch_original_rule_when_chunks_line_up():
    """Under the original rule the equality holds when no patch of the shorter clip is masked.

    31040 samples padded to 32000: both give 96 patches, all counted as audio (checked first).
    """
    torch.manual_seed(0)
    model = BeatsForAudioClassification(tiny_config(id2label={0: "a", 1: "b"})).eval()
    rng = np.random.default_rng(5)
    long_clip, short_clip = [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in (32000, 31040)]
    single, batched = _alone_and_batched(model, BeatsFeatureExtractor(), long_clip, short_clip)
    num_alone = single.patch_logits.shape[1]
    assert batched.attention_mask[1].all() and batched.patch_logits.shape[1] == num_alone
    torch.testing.assert_close(batched.patch_logits[1], single.patch_logits[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(batched.logits[1], single.logits[0], atol=1e-5, rtol=1e-5)


def test_original_rule_counts_a_partly_padded_time_step_as_audio(feature_extractor):
    """Documented quirk of the original: with unaligned lengths, boundary patches of padding count as audio."""
    model = BeatsModel(tiny_config()).eval()
    batch = feature_extractor(clips(3.0, 2.2), sampling_rate=16000)  # the parity cases' lengths
    alone = feature_extractor(clips(2.2), sampling_rate=16000)
    with torch.no_grad():
        valid = model(**batch).attention_mask[1]
        patches_alone = model(**alone).last_hidden_state.shape[1]
    assert int(valid.sum()) > patches_alone


def test_frame_head_shapes_loss_and_frame_rate(feature_extractor):
    torch.manual_seed(0)
    model = BeatsForAudioFrameClassification(tiny_config(id2label={0: "a", 1: "b", 2: "c"}))
    inputs = feature_extractor(clips(2.0, 1.5), sampling_rate=16000)
    out = model(**inputs)
    steps = inputs["input_values"].shape[1] // model.config.patch_size
    assert out.logits.shape == (2, steps, 3) and out.clip_logits.shape == (2, 3)
    assert out.frame_mask[0].all() and not out.frame_mask[1].all()
    labels = torch.zeros(2, steps, 3)
    labels[:, : steps // 2, 1] = 1.0
    loss = model(**inputs, labels=labels, clip_labels=torch.ones(2, 3)).loss
    assert torch.isfinite(loss)
    loss.backward()
    assert model.classifier.weight.grad.abs().sum() > 0
    assert model.config.frame_rate * 2.0 == pytest.approx(12.5)  # 2 s -> 12.5 steps of 160 ms
    with pytest.raises(ValueError, match="frame labels must have the shape"):
        model(**inputs, labels=torch.zeros(2, steps + 1, 3))


def test_classifier_training_step_reduces_loss(feature_extractor):
    torch.manual_seed(0)
    config = tiny_config(id2label={0: "a", 1: "b"}, problem_type="multi_label_classification")
    model = BeatsForAudioClassification(config).train()
    inputs = feature_extractor(clips(1.0, 1.0, seed=1), sampling_rate=16000)
    labels = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(8):
        loss = model(**inputs, labels=labels).loss
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_layer_wise_gradient_decay_scales_gradients(feature_extractor):
    """Gradients reaching the patch embedding shrink by the decay ratio once per layer (forward unchanged)."""
    inputs = feature_extractor(clips(1.0), sampling_rate=16000)
    grads, outputs = {}, {}
    for ratio in (1.0, 0.5):
        torch.manual_seed(0)
        model = BeatsModel(tiny_config(layer_wise_gradient_decay_ratio=ratio)).eval()
        out = model(**inputs).last_hidden_state
        out.sum().backward()
        grads[ratio] = model.patch_embedding.projection.weight.grad.clone()
        outputs[ratio] = out.detach()
    torch.testing.assert_close(outputs[1.0], outputs[0.5])
    torch.testing.assert_close(grads[0.5], grads[1.0] * 0.25, atol=1e-6, rtol=1e-4)


def test_gradient_checkpointing_gives_same_gradients(feature_extractor):
    inputs = feature_extractor(clips(1.0), sampling_rate=16000)
    grads = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        model = BeatsModel(tiny_config()).train()
        if checkpointing:
            model.activation_checkpointing_enable()
        model(**inputs).last_hidden_state.pow(2).mean().backward()
        grads.append(model.encoder.layers[0].attention.q_proj.weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1])


def test_pre_layer_norm_variant_runs_and_ends_with_layer_norm(feature_extractor):
    model = BeatsModel(tiny_config(deep_norm=False, layer_norm_first=True)).eval()
    inputs = feature_extractor(clips(1.0), sampling_rate=16000)
    with torch.no_grad():
        out = model(**inputs, output_hidden_states=True)
    torch.testing.assert_close(out.last_hidden_state.mean(-1), torch.zeros(out.last_hidden_state.shape[:2]), atol=1e-5, rtol=0)
    assert torch.equal(out.hidden_states[-1], out.last_hidden_state)


def test_invalid_configs_are_refused():
    with pytest.raises(ValueError, match="divisible by num_attention_heads"):
        BeatsConfig(hidden_size=30, num_attention_heads=4)
    with pytest.raises(ValueError, match="deep_norm and layer_norm_first"):
        BeatsConfig(deep_norm=True, layer_norm_first=True)
    with pytest.raises(ValueError, match="hidden_act"):
        BeatsConfig(hidden_act="glu")


def test_model_refuses_wrong_input_shapes():
    model = BeatsModel(tiny_config()).eval()
    with pytest.raises(ValueError, match=r"filterbank \[batch, frames, 128\]"):
        model(torch.zeros(1, 16000))
    with pytest.raises(ValueError, match="at least 16 are needed"):
        model(torch.zeros(1, 10, 128))
    with pytest.raises(ValueError, match="attention_mask must be frame-level"):
        model(torch.zeros(1, 32, 128), attention_mask=torch.ones(1, 16000))


def test_missing_head_is_initialised_when_loading_an_encoder_checkpoint(tmp_path, feature_extractor):
    torch.manual_seed(0)
    encoder = BeatsModel(tiny_config()).eval()
    encoder.save_pretrained(tmp_path)
    classifier = BeatsForAudioClassification.from_pretrained(
        tmp_path, dtype=torch.float32, id2label={0: "a", 1: "b", 2: "c"}
    ).eval()
    weight = classifier.classifier.weight.detach()
    assert torch.isfinite(weight).all() and 0.005 < float(weight.std()) < 0.05  # N(0, 0.02)
    assert torch.equal(classifier.classifier.bias, torch.zeros(3))
    for key, value in encoder.state_dict().items():
        assert torch.equal(classifier.beats.state_dict()[key], value), key


def test_torch_export_gives_the_same_outputs(feature_extractor):
    torch.manual_seed(0)
    model = BeatsModel(tiny_config()).eval()
    inputs = feature_extractor(clips(1.0, 0.8), sampling_rate=16000)
    args = (inputs["input_values"], inputs["attention_mask"])
    exported = torch.export.export(model, args, strict=False)
    with torch.no_grad():
        torch.testing.assert_close(exported.module()(*args)[0], model(*args).last_hidden_state)
