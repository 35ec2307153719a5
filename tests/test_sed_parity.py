"""PretrainedSED parity: every shared case, converted with the release conversion, against the original's outputs.

Checked per case: the feature extractor against the original front end (`mel`), the encoder sequence, the
250-frame resampled sequence, strong and weak outputs from the expected mel (case atol/rtol, eager and SDPA),
and the same outputs end to end from the waveform (the case's end_to_end_atol).
"""

from __future__ import annotations

import pytest
import torch
from transformers import AutoFeatureExtractor, AutoModelForAudioFrameClassification

from audiozoo.layers.sed_head import resample_sequence

from conftest import load_case

CASES = ["sed_atstf_tiny", "sed_fpasst_tiny", "sed_frame_mn06", "sed_wrapper_rnn_attention", "sed_asit_tiny",
         "sed_m2d_tiny", "sed_beats_tiny"]


def _model_input(model, mel: torch.Tensor) -> torch.Tensor:
    """The original mel [B, 1, F, T]; BEATs takes its filterbank as [B, T, F] (the SED wrapper transposes too)."""
    return mel[:, 0].transpose(1, 2) if model.config.model_type == "audiozoo-beats" else mel


def _encoder(model):
    return model.beats if model.config.model_type == "audiozoo-beats" else model.encoder


def _load(converted_dir, name: str, attn: str = "eager"):
    folder = converted_dir(name)
    model = AutoModelForAudioFrameClassification.from_pretrained(folder, attn_implementation=attn).eval()
    return model, AutoFeatureExtractor.from_pretrained(folder)


def _strong_weak(case, output) -> dict[str, torch.Tensor]:
    if "strong_probs" in case.expected:  # the attention head's outputs are probabilities
        return {"strong_probs": output.probabilities.transpose(1, 2), "weak_probs": output.clip_probabilities}
    return {"strong_logits": output.logits.transpose(1, 2), "weak_logits": output.clip_logits}


@pytest.mark.parametrize("name", CASES)
def test_feature_extractor_matches_original_front_end(name, converted_dir):
    case = load_case(name)
    _, feature_extractor = _load(converted_dir, name)
    waveforms = list(case.inputs["waveform"])
    features = feature_extractor(waveforms, sampling_rate=16000)["input_values"]
    expected = case.expected["mel"]
    if case.spec["family"] == "beats_sed":
        features = features.transpose(1, 2).unsqueeze(1)  # [B, T, F] -> the original's [B, 1, F, T]
    if name in ("sed_atstf_tiny", "sed_wrapper_rnn_attention"):
        # default: per-clip dB floor (inference.py semantics); the batch-coupled original is an option
        feature_extractor.top_db_per_item = False
        batched = feature_extractor(waveforms, sampling_rate=16000)["input_values"]
        torch.testing.assert_close(batched, expected, **case.tolerance("mel"))
        if "mel_per_item" in case.expected:
            torch.testing.assert_close(features, case.expected["mel_per_item"], **case.tolerance("mel_per_item"))
            assert (batched - features).abs().max() > 0.1  # the -40 dB clip really is batch-coupled
        return
    torch.testing.assert_close(features, expected, **case.tolerance("mel"))


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
@pytest.mark.parametrize("name", CASES)
def test_outputs_from_expected_mel(name, attn, converted_dir):
    case = load_case(name)
    model, _ = _load(converted_dir, name, attn)
    tolerance = case.tolerance("sequence")
    with torch.no_grad():
        inputs = _model_input(model, case.expected["mel"])
        sequence = _encoder(model)(inputs).last_hidden_state
        head = model.sed_head(sequence)
        output = model(inputs)
    torch.testing.assert_close(sequence, case.expected["sequence"], **tolerance)
    frames_250 = resample_sequence(sequence, 250)
    if "frames_250" in case.expected:
        torch.testing.assert_close(frames_250, case.expected["frames_250"], **tolerance)
    else:  # M2D: the case stores the first and last 8 of the 250 interpolated frames
        torch.testing.assert_close(frames_250[:, :8], case.expected["frames_250_first8"], **tolerance)
        torch.testing.assert_close(frames_250[:, -8:], case.expected["frames_250_last8"], **tolerance)
    if "seq_model_out" in case.expected:
        torch.testing.assert_close(head.frames, case.expected["seq_model_out"], **tolerance)
    for key, value in _strong_weak(case, output).items():
        torch.testing.assert_close(value, case.expected[key], **case.tolerance(key))
    if "strong_logits_per_item" in case.expected:
        with torch.no_grad():
            per_item = model(_model_input(model, case.expected["mel_per_item"]))
        torch.testing.assert_close(per_item.logits.transpose(1, 2), case.expected["strong_logits_per_item"], **tolerance)
        torch.testing.assert_close(per_item.clip_logits, case.expected["weak_logits_per_item"], **tolerance)


@pytest.mark.parametrize("name", CASES)
def test_end_to_end_from_waveform(name, converted_dir):
    case = load_case(name)
    model, feature_extractor = _load(converted_dir, name)
    if name in ("sed_atstf_tiny", "sed_wrapper_rnn_attention"):
        feature_extractor.top_db_per_item = False  # the case's main outputs come from the batched front end
    inputs = feature_extractor(list(case.inputs["waveform"]), sampling_rate=16000)
    with torch.no_grad():
        output = model(**inputs)
    atol = case.spec["tolerance"]["end_to_end_atol"]
    for key, value in _strong_weak(case, output).items():
        torch.testing.assert_close(value, case.expected[key], atol=atol, rtol=case.tolerance(key)["rtol"])
    if "strong_logits_per_item" in case.expected:
        feature_extractor.top_db_per_item = True
        with torch.no_grad():
            per_item = model(**feature_extractor(list(case.inputs["waveform"]), sampling_rate=16000))
        torch.testing.assert_close(per_item.logits.transpose(1, 2), case.expected["strong_logits_per_item"], atol=atol,
                                   rtol=1e-4)
