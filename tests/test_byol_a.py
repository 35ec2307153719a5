"""BYOL-A v1 and v2: parity with the original code, conversion wrappers, batching, front end, heads."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoFeatureExtractor, AutoModel, AutoModelForAudioFrameClassification

from audiozoo import ByolAConfig, ByolAFeatureExtractor, ByolAForAudioClassification, ByolAModel
from audiozoo.conversion.byol_a import convert_byol_a_checkpoint, encoder_state_dict
from audiozoo.conversion.common import CheckpointError

from conftest import load_case


def assert_close(case, name, actual, expected=None):
    expected = case.expected[name] if expected is None else expected
    torch.testing.assert_close(actual, expected, **case.tolerance(name), msg=lambda m: f"{case.name}/{name}: {m}")


def run_case(name, converted_dir):
    case = load_case(name)
    directory = converted_dir(name)
    fe = AutoFeatureExtractor.from_pretrained(directory)
    model = AutoModel.from_pretrained(directory, dtype=torch.float32).eval()
    clips = list(case.inputs["waveform"])
    inputs = fe(clips, sampling_rate=16000)
    with torch.no_grad():
        out = model(**inputs, output_hidden_states=True)
    return case, fe, model, clips, inputs, out


def test_v1_d512_matches_the_original(converted_dir):
    case, fe, model, clips, inputs, out = run_case("byola_v1_d512", converted_dir)
    assert type(model) is ByolAModel and model.config.version == 1 and model.config.hidden_size == 512
    assert_close(case, "log_mel", fe.log_mel(clips, 16000)[0])
    assert_close(case, "input_features", inputs["input_values"])
    assert_close(case, "frames", out.last_hidden_state)
    assert_close(case, "embedding", out.pooler_output)
    assert_close(case, "x_embedding", out.pooler_output)
    # the "X" variant's five layer features (conv1..3 channel-major and time-averaged, fc1, fc2)
    layered = torch.cat(out.hidden_states, dim=-1)
    assert [layer.shape[-1] for layer in out.hidden_states] == [2048, 1024, 512, 512, 512]
    assert_close(case, "x_layered_frames", layered)
    assert_close(case, "x_layered_embedding", layered.max(dim=1).values + layered.mean(dim=1))
    conv = case.expected["conv_features"]  # [B, 64, 8, 12]
    assert_close(case, "conv_features", out.hidden_states[2], conv.permute(0, 3, 1, 2).reshape(2, 12, 512))
    assert model.config.frame_rate == pytest.approx(12.5)


def test_v2_d3072_matches_the_original(converted_dir):
    case, fe, model, clips, inputs, out = run_case("byola_v2_d3072", converted_dir)
    assert model.config.version == 2 and model.config.hidden_size == 3072 and model.config.mlp_hidden_size == 256
    assert (fe.mel_scale, fe.mel_norm) == ("slaney", "slaney")
    assert_close(case, "log_mel", fe.log_mel(clips, 16000)[0])
    assert_close(case, "input_features", inputs["input_values"])
    assert_close(case, "frames", out.last_hidden_state)
    assert_close(case, "embedding", out.pooler_output)
    assert_close(case, "fc_hidden", out.hidden_states[1])
    assert torch.equal(out.last_hidden_state[..., :1024], out.hidden_states[0])  # the concatenated skip
    assert model.config.frame_rate == pytest.approx(25.0)


@pytest.mark.parametrize("name", ["byola_v1_d512", "byola_v2_d3072"])
def test_clip_alone_equals_clip_in_a_padded_batch(name, converted_dir):
    directory = converted_dir(name)
    fe = AutoFeatureExtractor.from_pretrained(directory)
    model = AutoModel.from_pretrained(directory, dtype=torch.float32).eval()
    rng = np.random.default_rng(0)
    short, longer = (rng.standard_normal(n).astype(np.float32) * 0.1 for n in (11000, 16000))
    alone, batch = fe(short, sampling_rate=16000), fe([longer, short], sampling_rate=16000)
    assert "attention_mask" in batch and "attention_mask" not in alone
    with torch.no_grad():
        single, batched = model(**alone), model(**batch)
    frames = single.last_hidden_state.shape[1]
    assert int(batched.attention_mask[1].sum()) == frames
    torch.testing.assert_close(batched.last_hidden_state[1, :frames], single.last_hidden_state[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(batched.pooler_output[1], single.pooler_output[0], atol=1e-5, rtol=1e-5)


def test_training_checkpoint_wrappers_and_prefixes(tmp_path):
    case = load_case("byola_v1_d512")
    plain = torch.load(case.checkpoint, map_location="cpu", weights_only=True)
    reference, _ = convert_byol_a_checkpoint(case.checkpoint)
    wrapped = {"state_dict": {f"learner.online_encoder.net.{k}": v for k, v in plain.items()}}
    wrapped["state_dict"].update({f"learner.target_encoder.net.{k}": v + 1.0 for k, v in plain.items()
                                  if v.is_floating_point()})
    path = tmp_path / "epoch=99.ckpt"
    torch.save(wrapped, path)
    model, _ = convert_byol_a_checkpoint(path)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in reference.state_dict().items())
    with pytest.raises(CheckpointError, match="cannot tell which encoder"):
        encoder_state_dict({"a.fc.0.weight": torch.zeros(1), "b.fc.0.weight": torch.zeros(1),
                            "features.0.weight": torch.zeros(1)})
    with pytest.raises(CheckpointError, match="not a BYOL-A checkpoint"):
        convert_byol_a_checkpoint(load_case("ast_tiny_f10").checkpoint)


def test_norm_stats_options_and_helper():
    case = load_case("byola_v1_d512")
    _, fe = convert_byol_a_checkpoint(case.checkpoint, norm_stats=(-1.0, 2.0))
    assert (fe.mean, fe.std) == (-1.0, 2.0)
    _, fe = convert_byol_a_checkpoint(case.checkpoint, norm_stats="v2_spcv2")
    assert fe.mean == pytest.approx(-9.660292)
    with pytest.raises(ValueError, match="unknown norm_stats preset"):
        convert_byol_a_checkpoint(case.checkpoint, norm_stats="nope")
    clips = list(case.inputs["waveform"])
    mean, std = ByolAFeatureExtractor.for_version(1).compute_norm_stats(clips, sampling_rate=16000)
    log_mel, _ = ByolAFeatureExtractor.for_version(1).log_mel(clips, 16000)
    assert mean == pytest.approx(float(log_mel.double().mean()), abs=1e-6)
    assert std == pytest.approx(float(log_mel.double().std(unbiased=False)), abs=1e-6)


def test_heads_and_bad_input(converted_dir):
    config = ByolAConfig(id2label={0: "a", 1: "b"}, problem_type="multi_label_classification")
    model = ByolAForAudioClassification(config).train()
    fe = ByolAFeatureExtractor.for_version(1)
    inputs = fe([np.random.default_rng(1).standard_normal(16000).astype(np.float32) * 0.1] * 2, sampling_rate=16000)
    loss = model(**inputs, labels=torch.tensor([[1.0, 0.0], [0.0, 1.0]])).loss
    loss.backward()
    assert torch.isfinite(loss) and model.byol_a.conv_blocks[0].conv.weight.grad is not None
    frame_model = AutoModelForAudioFrameClassification.from_pretrained(
        converted_dir("byola_v1_d512"), dtype=torch.float32, id2label={0: "a", 1: "b", 2: "c"}).eval()
    with torch.no_grad():
        out = frame_model(**inputs)
    assert out.logits.shape == (2, 12, 3) and out.clip_logits.shape == (2, 3)
    with pytest.raises(ValueError, match="at least 1120 samples"):
        fe(np.zeros(1000, dtype=np.float32), sampling_rate=16000)
    with pytest.raises(ValueError, match="expects audio sampled at 16000 Hz"):
        fe(np.zeros(16000, dtype=np.float32), sampling_rate=22050)
    with pytest.raises(ValueError, match=r"log-mel \[batch, 1, 64, frames\]"):
        frame_model.byol_a(torch.zeros(1, 1, 128, 100))
