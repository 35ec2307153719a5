"""AST: parity with the original code (YuanGongND/ast), conversion, heads, re-gridding, front end."""

from __future__ import annotations

import json
import subprocess
import sys

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

from audiozoo import AstConfig, AstFeatureExtractor, AstForAudioClassification, AstModel
from audiozoo.conversion.ast import convert_ast_checkpoint, read_ast_state_dict, strides_from_filename
from audiozoo.conversion.common import CheckpointError
from audiozoo.layers.vit import regrid_position_table

from conftest import REPO, ast_options, load_case

CASES = ["ast_tiny_f10", "ast_tiny_f16"]


def assert_close(case, name, actual, expected=None):
    expected = case.expected[name] if expected is None else expected
    torch.testing.assert_close(actual, expected, **case.tolerance(name), msg=lambda m: f"{case.name}/{name}: {m}")


def clips(case) -> list[torch.Tensor]:
    return [wave[:length] for wave, length in zip(case.inputs["waveform"], case.inputs["lengths"], strict=True)]


@pytest.mark.parametrize("name", CASES)
def test_feature_extractor_matches_the_original_dataloader(name, converted_dir):
    case = load_case(name)
    fe = AutoFeatureExtractor.from_pretrained(converted_dir(name))
    assert type(fe) is AstFeatureExtractor
    rate = case.spec["inputs"]["sample_rate"]
    inputs = fe(clips(case), sampling_rate=rate)
    assert "attention_mask" not in inputs  # fixed length: the original attends to every frame
    assert_close(case, "fbank", inputs["input_values"])
    assert_close(case, "fbank_unnormalized", fe(clips(case), sampling_rate=rate, do_normalize=False)["input_values"])


@pytest.mark.parametrize("attention", ["eager", "sdpa"])
@pytest.mark.parametrize("name", CASES)
def test_model_matches_the_original(name, attention, converted_dir):
    case = load_case(name)
    directory = converted_dir(name)
    model = AutoModelForAudioClassification.from_pretrained(
        directory, dtype=torch.float32, attn_implementation=attention
    ).eval()
    assert type(model) is AstForAudioClassification and model.config._attn_implementation == attention
    inputs = AutoFeatureExtractor.from_pretrained(directory)(clips(case), sampling_rate=16000)
    with torch.no_grad():
        out = model(**inputs, output_hidden_states=True)
        encoded = model.ast(**inputs)
    assert_close(case, "logits", out.logits)
    assert_close(case, "hidden_states", torch.stack(out.hidden_states))
    assert_close(case, "last_hidden_state", encoded.last_hidden_state)
    assert_close(case, "pooled", encoded.pooler_output)


@pytest.mark.parametrize("name", CASES)
def test_frame_head_and_auto_classes(name, converted_dir):
    case = load_case(name)
    directory = converted_dir(name)
    assert type(AutoConfig.from_pretrained(directory)) is AstConfig
    assert type(AutoModel.from_pretrained(directory, dtype=torch.float32)) is AstModel
    model = AutoModelForAudioFrameClassification.from_pretrained(directory, dtype=torch.float32).eval()
    with torch.no_grad():
        out = model(input_values=case.expected["fbank"])
    config = model.config
    assert out.logits.shape == (2, config.time_patches, 5)
    assert_close(case, "logits", out.clip_logits)
    # frame features: the final-LN patch grid (frequency-major) averaged over frequency, through the clip head
    grid = case.expected["last_hidden_state"][:, 2:].reshape(2, config.frequency_patches, config.time_patches, -1)
    with torch.no_grad():
        expected = model.classifier(grid.mean(dim=1))
    assert_close(case, "logits", out.logits, expected)
    assert config.frame_rate == pytest.approx(100.0 / config.time_stride)


def test_conversion_reads_strides_from_released_file_names():
    assert strides_from_filename("audioset_10_10_0.4593.pth") == (10, 10)
    assert strides_from_filename("audioset_16_16_0.4422.pth") == (16, 16)
    assert strides_from_filename("speechcommands_10_10_0.9812.pth") == (10, 10)
    assert strides_from_filename("original.pt") is None


def test_conversion_errors(tmp_path):
    case = load_case("ast_tiny_f10")
    with pytest.raises(CheckpointError, match="strides of original.pt are unknown"):
        convert_ast_checkpoint(case.checkpoint, max_length=100, num_attention_heads=4)
    with pytest.raises(CheckpointError, match="position table holds 108 patches"):
        convert_ast_checkpoint(case.checkpoint, **{**ast_options(case), "max_length": 300})
    beats = load_case("beats_tiny_ssl").checkpoint
    with pytest.raises(CheckpointError, match="not an AST checkpoint"):
        read_ast_state_dict(beats)
    state = torch.load(case.checkpoint, map_location="cpu", weights_only=True)
    state.pop("module.v.blocks.1.mlp.fc2.weight")
    path = tmp_path / "audioset_10_10_0.4593.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=r"missing weights \['ast.layers.1.mlp.fc2.weight'\]"):
        convert_ast_checkpoint(path, max_length=100, num_attention_heads=4)


def test_regrid_rule_cuts_the_middle_and_interpolates():
    rows, columns = 3, 6
    table = torch.arange(rows * columns, dtype=torch.float32).reshape(1, rows * columns, 1)
    cut = regrid_position_table(table, (rows, columns), (3, 2)).reshape(rows, 2)
    # columns // 2 - 2 // 2 = 2: columns 2 and 3 of every row
    assert cut.tolist() == [[2.0, 3.0], [8.0, 9.0], [14.0, 15.0]]
    grown = regrid_position_table(table, (rows, columns), (rows, 12)).reshape(rows, 12)
    expected = torch.nn.functional.interpolate(
        table.reshape(1, 1, rows, columns), size=(rows, 12), mode="bilinear").reshape(rows, 12)
    assert torch.equal(grown, expected)
    same = regrid_position_table(table, (rows, columns), (rows, columns))
    assert torch.equal(same, table)


def test_target_max_length_regrids_and_still_runs():
    case = load_case("ast_tiny_f10")
    model, fe = convert_ast_checkpoint(case.checkpoint, **ast_options(case), target_max_length=60)
    assert model.config.max_length == 60 and fe.max_length == 60
    assert model.ast.embeddings.position_embeddings.shape[1] == 2 + 12 * 5
    inputs = fe([wave[:8000] for wave in clips(case)], sampling_rate=16000)
    with torch.no_grad():
        assert model(**inputs).logits.shape == (2, 5)


def test_too_long_audio_is_refused_unless_truncation_is_asked(converted_dir):
    fe = AutoFeatureExtractor.from_pretrained(converted_dir("ast_tiny_f10"))  # max_length 100 frames
    long_clip = np.random.default_rng(0).standard_normal(16000 * 2).astype(np.float32) * 0.1
    with pytest.raises(ValueError, match=r"198 frames .* at most 100 frames .* truncation=True"):
        fe(long_clip, sampling_rate=16000)
    cut = fe(long_clip, sampling_rate=16000, truncation=True)["input_values"]
    # the first 16240 samples give exactly 100 frames; their mean differs from the whole clip's, but Kaldi's
    # per-frame DC removal cancels a constant offset, so only rounding separates the two
    first = fe(long_clip[:16240], sampling_rate=16000)["input_values"]
    torch.testing.assert_close(cut, first, atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="expects audio sampled at 16000 Hz"):
        fe(long_clip, sampling_rate=8000)
    with pytest.raises(ValueError, match=r"input_values must be \[batch, 100, 128\]"):
        AstModel(AstConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=64,
                           max_length=100))(torch.zeros(1, 99, 128))


def test_pipeline_and_remote_code_folder(converted_dir):
    from transformers import pipeline

    directory = converted_dir("ast_tiny_f16")
    classify = pipeline("audio-classification", model=str(directory), dtype=torch.float32)
    case = load_case("ast_tiny_f16")
    results = classify(clips(case)[0].numpy(), top_k=2)
    assert len(results) == 2
    config = json.loads((directory / "config.json").read_text())
    assert config["auto_map"]["AutoModel"] == "modeling_ast.AstModel"
    assert (directory / "vit.py").is_file() and (directory / "fbank_feature_extractor.py").is_file()


def test_conversion_script(tmp_path):
    case = load_case("ast_tiny_f16")
    subprocess.run(
        [sys.executable, str(REPO / "conversion_scripts" / "convert_ast_original_to_hf.py"),
         "--checkpoint_path", str(case.checkpoint), "--pytorch_dump_folder_path", str(tmp_path / "out"),
         "--fstride", "16", "--tstride", "16", "--max_length", "128", "--num_attention_heads", "4"],
        check=True, capture_output=True,
    )
    assert (tmp_path / "out" / "model.safetensors").is_file()


@pytest.mark.parametrize("name", ["ast_tiny_f16", "eat_tiny_finetuned"])
def test_clip_alone_equals_clip_in_a_batch(name, converted_dir):
    """Fixed-length models: a clip's features and logits do not depend on the other clips of the batch."""
    directory = converted_dir(name)
    fe = AutoFeatureExtractor.from_pretrained(directory)
    model = AutoModelForAudioClassification.from_pretrained(directory, dtype=torch.float32).eval()
    rng = np.random.default_rng(0)
    short, longer = (rng.standard_normal(n).astype(np.float32) * 0.1 for n in (9000, 16000))
    alone = fe(short, sampling_rate=16000)
    batch = fe([longer, short], sampling_rate=16000)
    # the clip mean is summed over a padded row in the batch: rounding differs by a few 1e-6 on low-energy bins
    torch.testing.assert_close(batch["input_values"][1], alone["input_values"][0], atol=1e-5, rtol=0)
    with torch.no_grad():
        torch.testing.assert_close(model(**batch).logits[1], model(**alone).logits[0], atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="NaN/Inf"):
        fe(np.full(4000, np.nan, dtype=np.float32), sampling_rate=16000)
