"""BEATs ports against the original code's outputs (tests/fixtures/parity, produced by microsoft/unilm)."""

from __future__ import annotations

import pytest
import torch
from transformers import (
    AutoFeatureExtractor,
    AutoModel,
    AutoModelForAudioClassification,
    AutoModelForAudioFrameClassification,
)

from conftest import load_case

ATTENTION = ["eager", "sdpa"]


def assert_close(case, name: str, actual: torch.Tensor, expected: torch.Tensor | None = None) -> None:
    expected = case.expected[name] if expected is None else expected
    torch.testing.assert_close(actual, expected, **case.tolerance(name), msg=lambda m: f"{case.name}/{name}: {m}")


def features(case, directory):
    """Run the converted feature extractor on the case's clips, unpadded (it pads them itself)."""
    fe = AutoFeatureExtractor.from_pretrained(directory)
    return fe(case.unpadded_waveforms(), sampling_rate=case.spec["inputs"]["sample_rate"])


def load_and_run(case, directory, auto_class, attention):
    """Load the converted case with `auto_class` and `attention`; outputs with and without the frame mask."""
    model = auto_class.from_pretrained(directory, dtype=torch.float32, attn_implementation=attention).eval()
    assert model.config._attn_implementation == attention
    inputs = features(case, directory)
    with torch.no_grad():
        return model, model(**inputs, output_hidden_states=True), model(input_values=inputs["input_values"])


@pytest.mark.parametrize("name", ["beats_tiny_ssl", "beats_tiny_finetuned", "beats_tokenizer_tiny"])
def test_feature_extractor_matches_original_fbank(name, converted_dir):
    case = load_case(name)
    inputs = features(case, converted_dir(name))
    assert_close(case, "fbank", inputs["input_values"])
    # the clips differ in length, so a frame mask comes back; frames of the shorter clip's tail are masked
    assert inputs["attention_mask"].shape == inputs["input_values"].shape[:2]
    assert inputs["attention_mask"][0].all() and not inputs["attention_mask"][1].all()


@pytest.mark.parametrize("attention", ATTENTION)
def test_pretrained_encoder(attention, converted_dir):
    case = load_case("beats_tiny_ssl")
    model, out, unmasked = load_and_run(case, converted_dir(case.name), AutoModel, attention)
    assert_close(case, "last_hidden_state", out.last_hidden_state)
    assert len(out.hidden_states) == model.config.num_hidden_layers + 1
    assert_close(case, "hidden_states", torch.stack(out.hidden_states))
    assert torch.equal(~out.attention_mask, case.expected["padding_mask_out"])
    assert_close(case, "last_hidden_state_no_mask", unmasked.last_hidden_state)


@pytest.mark.parametrize("attention", ATTENTION)
def test_finetuned_classifier(attention, converted_dir):
    case = load_case("beats_tiny_finetuned")
    model, out, unmasked = load_and_run(case, converted_dir(case.name), AutoModelForAudioClassification, attention)
    assert_close(case, "last_hidden_state", out.hidden_states[-1])
    assert_close(case, "frame_logits", out.patch_logits)
    assert_close(case, "probs", torch.sigmoid(out.logits))
    assert_close(case, "probs_no_mask", torch.sigmoid(unmasked.logits))
    assert torch.equal(~out.attention_mask, case.expected["padding_mask_out"])
    assert model.config.problem_type == "multi_label_classification"
    label_dict = torch.load(case.checkpoint, map_location="cpu", weights_only=True)["label_dict"]
    assert model.config.label_mids == [label_dict[index] for index in range(len(label_dict))]
    # made-up MIDs are not in the AudioSet ontology, so the MID itself is the label
    assert model.config.id2label[3] == label_dict[3]


@pytest.mark.parametrize("attention", ATTENTION)
def test_finetuned_frame_classifier(attention, converted_dir):
    """The frame head on the fine-tuned checkpoint: per-patch logits averaged over each time step's valid patches."""
    case = load_case("beats_tiny_finetuned")
    model, out, _ = load_and_run(case, converted_dir(case.name), AutoModelForAudioFrameClassification, attention)
    patch_logits = case.expected["frame_logits"]  # [B, P, C], time-major
    valid = ~case.expected["padding_mask_out"]
    batch, patches, classes = patch_logits.shape
    bands = model.config.num_frequency_patches
    grid = patch_logits.reshape(batch, patches // bands, bands, classes)
    grid_valid = valid.reshape(batch, patches // bands, bands, 1).float()
    expected_frames = (grid * grid_valid).sum(2) / grid_valid.sum(2).clamp(min=1)
    assert_close(case, "frame_logits", out.logits, expected_frames)
    assert torch.equal(out.frame_mask, grid_valid.squeeze(-1).bool().any(-1))
    assert_close(case, "probs", torch.sigmoid(out.clip_logits))
    assert out.logits.shape[1] == patches // bands
    assert model.config.frame_rate == pytest.approx(6.25)


@pytest.mark.parametrize("attention", ATTENTION)
def test_tokenizer(attention, converted_dir):
    case = load_case("beats_tokenizer_tiny")
    model, out, _ = load_and_run(case, converted_dir(case.name), AutoModel, attention)
    assert type(model).__name__ == "BeatsTokenizerModel"
    assert_close(case, "last_hidden_state", out.last_hidden_state)
    assert_close(case, "quantize_input", out.quantizer_input)
    assert torch.equal(~out.attention_mask, case.expected["padding_mask_out"])
    # the original returns the ids flattened batch-major; ours are [B, P]
    assert out.codebook_ids.shape == case.expected["padding_mask_out"].shape
    assert torch.equal(out.codebook_ids.flatten(), case.expected["labels"])
