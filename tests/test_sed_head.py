"""The PretrainedSED prediction head on every encoder, its settings and loss, and SED conversion edge cases."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from transformers import AutoModelForAudioFrameClassification

import audiozoo
from audiozoo.conversion.common import CheckpointError
from audiozoo.conversion.pretrained_sed import convert_pretrained_sed_checkpoint
from audiozoo.layers.sed_head import SedHeadSettings, SedPredictionHead, resample_sequence
from conftest import PARITY, load_case

SMALL_VIT = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
HEAD = {"seq_len": 20, "window_seconds": 2.0, "input_sequence": "frames"}
LABELS = {"id2label": {0: "a", 1: "b", 2: "c"}, "label2id": {"a": 0, "b": 1, "c": 2}}


def _families():
    """(name, config, feature extractor) of a tiny model of every family, each with the SED head."""
    return [
        ("beats", audiozoo.BeatsConfig(**SMALL_VIT, patch_embed_dim=16, sed_head=HEAD, **LABELS),
         audiozoo.BeatsFeatureExtractor()),
        ("ast", audiozoo.AstConfig(**SMALL_VIT, max_length=200, sed_head=HEAD, **LABELS),
         audiozoo.AstFeatureExtractor(max_length=200)),
        ("eat", audiozoo.EatConfig(**SMALL_VIT, max_length=208, sed_head=HEAD, **LABELS),
         audiozoo.EatFeatureExtractor(max_length=208)),
        ("byol_a", audiozoo.ByolAConfig(hidden_size=32, mlp_hidden_size=32, conv_channels=8, sed_head=HEAD, **LABELS),
         audiozoo.ByolAFeatureExtractor()),
        ("atst_frame", audiozoo.AtstFrameConfig(**SMALL_VIT, sed_head={**HEAD, "input_sequence": "tokens"}, **LABELS),
         audiozoo.AtstFrameFeatureExtractor()),
        ("fpasst", audiozoo.FpasstConfig(**SMALL_VIT, sed_head=HEAD | {"input_sequence": "tokens"}, **LABELS),
         audiozoo.PasstMelFeatureExtractor()),
        ("asit", audiozoo.AsitConfig(**SMALL_VIT, sed_head=HEAD | {"input_sequence": "tokens"}, **LABELS),
         audiozoo.AsitFeatureExtractor()),
        ("m2d", audiozoo.M2dConfig(**SMALL_VIT, sed_head=HEAD | {"input_sequence": "tokens"}, **LABELS),
         audiozoo.M2dFeatureExtractor()),
        ("frame_mn", audiozoo.FrameMnConfig(width_mult=0.3, sed_head=HEAD | {"input_sequence": "tokens"}, **LABELS),
         audiozoo.PasstMelFeatureExtractor(periodic_window=False)),
    ]


@pytest.mark.parametrize("name,config,feature_extractor", _families(), ids=[f[0] for f in _families()])
def test_sed_head_on_every_encoder_trains_and_round_trips(name, config, feature_extractor, tmp_path):
    torch.manual_seed(0)
    model = AutoModelForAudioFrameClassification.from_config(config)
    assert hasattr(model, "sed_head") and config.frame_rate == 10.0
    waveforms = [np.sin(np.arange(32000) * 0.01 * (index + 1)).astype(np.float32) for index in range(2)]
    inputs = feature_extractor(waveforms, sampling_rate=16000)
    labels = torch.zeros(2, 20, 3)
    labels[0, 5:10, 1] = 1.0
    output = model(**inputs, labels=labels, clip_labels=labels.amax(dim=1))
    assert output.logits.shape == (2, 20, 3) and output.clip_logits.shape == (2, 3)
    torch.testing.assert_close(output.probabilities, output.logits.sigmoid())
    output.loss.backward()
    assert model.sed_head.strong_head.weight.grad.abs().sum() > 0
    model.eval()
    model.save_pretrained(tmp_path)
    reloaded = AutoModelForAudioFrameClassification.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**inputs).logits, model(**inputs).logits)


def test_resampling_is_adaptive_pooling_or_linear_interpolation():
    sequence = torch.randn(2, 497, 8)
    pooled = resample_sequence(sequence, 250)
    torch.testing.assert_close(pooled, torch.nn.functional.adaptive_avg_pool1d(sequence.transpose(1, 2), 250).transpose(1, 2))
    short = torch.randn(1, 62, 4)
    stretched = resample_sequence(short, 250)
    assert stretched.shape == (1, 250, 4)
    torch.testing.assert_close(stretched[0, 0], short[0, 0])  # align_corners=False keeps the ends
    assert resample_sequence(sequence[:, :250], 250) is not None


def test_attention_head_outputs_probabilities_and_lstm_has_embedding():
    settings = SedHeadSettings(seq_model_type="rnn", rnn_type="BiLSTM", rnn_dim=6, rnn_layers=1, head_type="attention")
    head = SedPredictionHead(8, 4, settings)
    assert head.seq_model.embedding.weight.shape == (12, 12)
    output = head(torch.randn(3, 30, 8))
    assert output.frame_probabilities.shape == (3, 250, 4)
    assert bool(((output.clip_probabilities > 0) & (output.clip_probabilities < 1)).all())
    lower = output.frame_probabilities.min(dim=1).values - 1e-6
    upper = output.frame_probabilities.max(dim=1).values + 1e-6
    assert bool(((output.clip_probabilities >= lower) & (output.clip_probabilities <= upper)).all())  # a weighted mean
    torch.testing.assert_close(output.frame_logits.sigmoid(), output.frame_probabilities)


def test_frame_mask_excludes_frames_from_the_loss():
    config = audiozoo.AtstFrameConfig(**SMALL_VIT, sed_head={"seq_len": 25, "window_seconds": 1.0}, **LABELS)
    model = AutoModelForAudioFrameClassification.from_config(config).eval()
    features = torch.randn(1, 1, 64, 101)
    labels, mask = torch.zeros(1, 25, 3), torch.ones(1, 25, dtype=torch.bool)
    mask[:, 20:] = False
    changed = labels.clone()
    changed[:, 20:] = 1.0
    first = model(features, labels=labels, frame_mask=mask).loss
    assert torch.equal(first, model(features, labels=changed, frame_mask=mask).loss)
    assert not torch.equal(first, model(features, labels=changed).loss)
    with pytest.raises(ValueError, match="frame labels must have shape"):
        model(features, labels=torch.zeros(1, 24, 3))


def test_settings_are_validated():
    with pytest.raises(ValueError, match="unknown sed_head settings"):
        SedHeadSettings.from_dict({"seq_length": 250})
    with pytest.raises(ValueError, match="head_type"):
        SedHeadSettings(head_type="max")
    with pytest.raises(ValueError, match="as many clip as frame classes"):
        SedPredictionHead(8, 4, SedHeadSettings(head_type="attention", num_weak_labels=3))


def test_long_inputs_are_refused_not_cut():
    atst = audiozoo.AtstFrameModel(audiozoo.AtstFrameConfig(**SMALL_VIT))
    with pytest.raises(ValueError, match="at most 1000 frames"):
        atst(torch.randn(1, 1, 64, 1004))
    fpasst = audiozoo.FpasstModel(audiozoo.FpasstConfig(**SMALL_VIT))
    with pytest.raises(ValueError, match="at most 250 time patches"):
        fpasst(torch.randn(1, 1, 128, 1004))
    with pytest.raises(ValueError, match=r"expects input_values \[batch, 1, 80"):
        audiozoo.M2dModel(audiozoo.M2dConfig(**SMALL_VIT))(torch.randn(1, 80, 100))
    # M2D encodes > 10 s in 1001-frame chunks; ASiT re-grids its positions; frame-MobileNet takes any length
    m2d = audiozoo.M2dModel(audiozoo.M2dConfig(**SMALL_VIT)).eval()
    assert m2d(torch.randn(1, 1, 80, 1201)).last_hidden_state.shape == (1, 62 + 13, 5 * 32)


def _case_state_dict(name: str) -> dict:
    case = load_case(name)
    return torch.load(case.checkpoint, weights_only=True)


def test_conversion_handles_missing_and_other_sized_heads(tmp_path, caplog):
    state = _case_state_dict("sed_atstf_tiny")
    without_heads = {k: v for k, v in state.items() if not k.startswith(("strong_head", "weak_head"))}
    torch.save(without_heads, tmp_path / "ATST-F_ssl.pt")
    with caplog.at_level(logging.WARNING):
        model, _ = convert_pretrained_sed_checkpoint(tmp_path / "ATST-F_ssl.pt", "ATST-F", num_attention_heads=4)
    assert model.config.num_labels == 447 and "no such heads" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        model, _ = convert_pretrained_sed_checkpoint(PARITY / "sed_atstf_tiny" / "ATST-F_strong_1.pt", "ATST-F",
                                                     num_labels=10, num_attention_heads=4)
    assert model.sed_head.strong_head.weight.shape == (10, 64) and "another size" in caplog.text
    assert model.config.id2label[9] == "LABEL_9"


def test_conversion_accepts_renamed_and_legacy_layouts(tmp_path):
    state = _case_state_dict("sed_fpasst_tiny")
    renamed = {("model.fpasst." + k[len("model."):] if k.startswith("model.") else k): v for k, v in state.items()}
    torch.save(renamed, tmp_path / "fpasst_strong_1.pt")
    model, _ = convert_pretrained_sed_checkpoint(tmp_path / "fpasst_strong_1.pt", "fpasst", num_attention_heads=4)
    reference, _ = convert_pretrained_sed_checkpoint(PARITY / "sed_fpasst_tiny" / "fpasst_strong_1.pt", "fpasst",
                                                     num_attention_heads=4)
    for key, value in reference.state_dict().items():
        assert torch.equal(value, model.state_dict()[key]), key
    # BEATs weight norm in the legacy spelling (weight_g / weight_v)
    state = _case_state_dict("sed_beats_tiny")
    legacy = {k.replace("parametrizations.weight.original0", "weight_g").replace("parametrizations.weight.original1",
                                                                                   "weight_v"): v for k, v in state.items()}
    torch.save(legacy, tmp_path / "BEATs_strong_1.pt")
    model, _ = convert_pretrained_sed_checkpoint(tmp_path / "BEATs_strong_1.pt", "BEATs")
    case = load_case("sed_beats_tiny")
    with torch.no_grad():
        logits = model(case.expected["mel"][:, 0].transpose(1, 2)).logits.transpose(1, 2)
    torch.testing.assert_close(logits, case.expected["strong_logits"], **case.tolerance("strong_logits"))


def test_conversion_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="unknown PretrainedSED model name"):
        convert_pretrained_sed_checkpoint(PARITY / "sed_atstf_tiny" / "ATST-F_strong_1.pt", "PANNs")
    with pytest.raises(CheckpointError, match=r"M2D weights under \['model.backbone.'"):
        convert_pretrained_sed_checkpoint(PARITY / "sed_atstf_tiny" / "ATST-F_strong_1.pt", "M2D")
    with pytest.raises(CheckpointError, match="ATST-F weights"):
        convert_pretrained_sed_checkpoint(PARITY / "sed_m2d_tiny" / "M2D_strong_1.pt", "ATST-F")
    torch.save({"cfg": {}, "model": {}}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a PretrainedSED checkpoint"):
        convert_pretrained_sed_checkpoint(tmp_path / "other.pt", "ATST-F")


def test_feature_extractors_refuse_bad_audio():
    extractor = audiozoo.AtstFrameFeatureExtractor()
    with pytest.raises(ValueError, match="expects audio sampled at 16000 Hz"):
        extractor(np.zeros(16000, dtype=np.float32), sampling_rate=32000)
    with pytest.raises(ValueError, match="NaN"):
        extractor(np.full(16000, np.inf, dtype=np.float32), sampling_rate=16000)
    with pytest.raises(ValueError, match="samples"):
        audiozoo.M2dFeatureExtractor()(np.zeros(100, dtype=np.float32), sampling_rate=16000)
