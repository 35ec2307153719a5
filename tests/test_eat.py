"""EAT: parity with the original fairseq code, fairseq-free checkpoint reading, heads, front end."""

from __future__ import annotations

import io
import json
import logging
import pickle
import sys
import types

import pytest
import torch
from transformers import (
    AutoFeatureExtractor,
    AutoModel,
    AutoModelForAudioClassification,
    AutoModelForAudioFrameClassification,
)

from audiozoo import EatConfig, EatForAudioClassification, EatModel
from audiozoo.conversion.common import CheckpointError
from audiozoo.conversion.eat import convert_eat_checkpoint
from audiozoo.conversion.fairseq import load_fairseq_checkpoint
from audiozoo.models.eat import sincos_position_table

from conftest import load_case


def assert_close(case, name, actual, expected=None):
    expected = case.expected[name] if expected is None else expected
    torch.testing.assert_close(actual, expected, **case.tolerance(name), msg=lambda m: f"{case.name}/{name}: {m}")


def features(case, directory):
    fe = AutoFeatureExtractor.from_pretrained(directory)
    clips = [case.inputs["waveform_a"], case.inputs["waveform_b"]]
    # clip b has 298 frames for a 256-frame model: the original keeps the first 256, which we do only when asked
    with pytest.raises(ValueError, match="truncation=True"):
        fe(clips, sampling_rate=16000)
    return fe(clips, sampling_rate=16000, truncation=True)


@pytest.mark.parametrize("attention", ["eager", "sdpa"])
def test_pretrained_encoder(attention, converted_dir):
    case = load_case("eat_tiny_pretrained")
    directory = converted_dir(case.name)
    model = AutoModel.from_pretrained(directory, dtype=torch.float32, attn_implementation=attention).eval()
    assert type(model) is EatModel
    inputs = features(case, directory)
    assert_close(case, "fbank", inputs["input_values"], case.expected["fbank"][:, 0])
    with torch.no_grad():
        out = model(**inputs, output_hidden_states=True)
        original_layout = model(input_values=case.expected["fbank"])  # the original's [B, 1, T, 128]
    assert_close(case, "last_hidden_state", out.last_hidden_state)
    assert_close(case, "cls_feature", out.pooler_output)
    assert torch.equal(out.hidden_states[-1], out.last_hidden_state) and len(out.hidden_states) == 3
    assert_close(case, "last_hidden_state", original_layout.last_hidden_state)


@pytest.mark.parametrize("attention", ["eager", "sdpa"])
def test_finetuned_classifier_and_frame_head(attention, converted_dir):
    case = load_case("eat_tiny_finetuned")
    directory = converted_dir(case.name)
    model = AutoModelForAudioClassification.from_pretrained(
        directory, dtype=torch.float32, attn_implementation=attention
    ).eval()
    assert type(model) is EatForAudioClassification
    inputs = features(case, directory)
    with torch.no_grad():
        out = model(**inputs)
        encoded = model.eat(**inputs)
    assert_close(case, "logits", out.logits)
    assert_close(case, "probs", out.logits.sigmoid())
    assert_close(case, "last_hidden_state", encoded.last_hidden_state)
    assert_close(case, "cls_feature", encoded.pooler_output)
    assert_close(case, "pooled_output", model.classifier.layer_norm(encoded.pooler_output))
    checkpoint = torch.load(case.checkpoint, map_location="cpu", weights_only=True)
    mids = {int(index): mid for mid, index in checkpoint["task_state"]["labels"].items()}
    assert model.config.id2label[0] == "Speech" and mids[0] == "/m/09x0r"
    assert model.config.problem_type == "multi_label_classification"

    frame_model = AutoModelForAudioFrameClassification.from_pretrained(directory, dtype=torch.float32).eval()
    with torch.no_grad():
        frames = frame_model(**inputs)
    assert frames.logits.shape == (2, 256 // 16, 10)
    assert_close(case, "logits", frames.clip_logits)
    patches = case.expected["last_hidden_state"][:, 1:].reshape(2, 16, 8, -1).mean(dim=2)
    with torch.no_grad():
        assert_close(case, "logits", frames.logits, frame_model.classifier(patches))


def test_teacher_and_decoder_are_left_out_and_said(caplog):
    case = load_case("eat_tiny_pretrained")
    with caplog.at_level(logging.INFO, logger="audiozoo.conversion.eat"):
        model, _ = convert_eat_checkpoint(case.checkpoint)
    assert "the EMA teacher (_ema), the CNN decoder" in caplog.text
    assert not any("decoder" in key for key in model.state_dict())
    assert model.config.num_positions == 512 and model.config.max_length == 256


def test_sincos_table_follows_the_original_layout():
    """First half of the channels: frequency index; second half: time index; each [sin | cos]."""
    table = sincos_position_table(8, time_patches=3, frequency_patches=2)
    assert table.shape == (6, 8)
    row = table[2 * 2 + 1]  # time 2, frequency 1
    omega = 1.0 / 10000 ** (torch.arange(2, dtype=torch.float64) / 2)
    expected = torch.cat([(1 * omega).sin(), (1 * omega).cos(), (2 * omega).sin(), (2 * omega).cos()]).float()
    torch.testing.assert_close(row, expected)
    fresh = EatModel(EatConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=64,
                               max_length=64, num_positions=16 * 8))
    torch.testing.assert_close(fresh.embeddings.position_embeddings[0], sincos_position_table(32, 16, 8))


def _fake_omegaconf_checkpoint(tmp_path, plain_cfg: dict):
    """Write a checkpoint whose cfg is pickled as an omegaconf-like DictConfig from a module that then vanishes."""

    module = types.ModuleType("omegaconf.dictconfig")

    class DictConfig:
        def __init__(self, content):
            self._content = {key: DictConfig(value) if isinstance(value, dict) else value
                             for key, value in content.items()}

        def __getstate__(self):
            return {"_metadata": None, "_parent": None, "_content": self._content}

    DictConfig.__module__ = "omegaconf.dictconfig"
    DictConfig.__qualname__ = "DictConfig"
    module.DictConfig = DictConfig
    sys.modules["omegaconf"] = types.ModuleType("omegaconf")
    sys.modules["omegaconf.dictconfig"] = module
    try:
        path = tmp_path / "eat_omegaconf.pt"
        checkpoint = torch.load(load_case("eat_tiny_finetuned").checkpoint, map_location="cpu", weights_only=True)
        checkpoint["cfg"] = DictConfig(plain_cfg)
        torch.save(checkpoint, path)
    finally:
        del sys.modules["omegaconf"], sys.modules["omegaconf.dictconfig"]
    return path


def test_pickled_config_objects_are_read_without_omegaconf(tmp_path):
    case = load_case("eat_tiny_finetuned")
    plain = torch.load(case.checkpoint, map_location="cpu", weights_only=True)["cfg"]
    path = _fake_omegaconf_checkpoint(tmp_path, plain)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, map_location="cpu", weights_only=True)  # the plain safe loader refuses it
    loaded = load_fairseq_checkpoint(path)
    assert loaded["cfg"]["model"]["_name"] == "mae_image_classification"
    assert loaded["cfg"]["model"]["pretrained_model_args"]["model"]["embed_dim"] == 64
    model, _ = convert_eat_checkpoint(path)
    reference, _ = convert_eat_checkpoint(case.checkpoint)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in reference.state_dict().items())


def test_code_in_a_pickle_is_refused(tmp_path):
    class Exploit:
        def __reduce__(self):
            import os

            return (os.system, ("echo pwned",))

    buffer = io.BytesIO()
    torch.save({"cfg": Exploit(), "model": {}}, buffer)
    path = tmp_path / "exploit.pt"
    path.write_bytes(buffer.getvalue())
    with pytest.raises(CheckpointError, match=r"pickles posix\.system|pickles os\.system|pickles nt\.system"):
        load_fairseq_checkpoint(path)


def test_other_families_are_refused(tmp_path):
    with pytest.raises(CheckpointError, match="not an EAT checkpoint: cfg.model._name is None"):
        convert_eat_checkpoint(load_case("beats_tiny_ssl").checkpoint)
    path = tmp_path / "ast.pth"
    torch.save({"module.v.pos_embed": torch.zeros(1)}, path)
    with pytest.raises(CheckpointError, match="not a fairseq checkpoint"):
        load_fairseq_checkpoint(path)


def test_remote_code_and_config(converted_dir):
    directory = converted_dir("eat_tiny_finetuned")
    config = json.loads((directory / "config.json").read_text())
    assert config["model_type"] == "audiozoo-eat"
    assert config["auto_map"]["AutoModelForAudioClassification"] == "modeling_eat.EatForAudioClassification"
    assert (directory / "modeling_eat.py").is_file() and (directory / "vit.py").is_file()
