"""Conversion of original BEATs checkpoints: outputs written, strictness, clear errors on bad files."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from transformers import AutoModel

from audiozoo.conversion.beats import convert_beats_checkpoint, read_beats_checkpoint
from audiozoo.conversion.common import CheckpointError

from conftest import REPO, load_case


def test_output_folder_contents(converted_dir):
    directory = converted_dir("beats_tiny_finetuned")
    names = {path.name for path in directory.iterdir()}
    assert {"config.json", "model.safetensors", "preprocessor_config.json", "README.md"} <= names
    config = json.loads((directory / "config.json").read_text())
    assert config["model_type"] == "audiozoo-beats"
    assert config["architectures"] == ["BeatsForAudioClassification"]
    assert config["num_hidden_layers"] == 2 and config["hidden_size"] == 64 and config["patch_embed_dim"] == 48
    assert config["max_distance"] == 800 and config["layer_wise_gradient_decay_ratio"] == 0.6
    preprocessor = json.loads((directory / "preprocessor_config.json").read_text())
    assert preprocessor["feature_extractor_type"] == "BeatsFeatureExtractor"
    assert preprocessor["sampling_rate"] == 16000 and preprocessor["mean"] == pytest.approx(15.41663)


def test_every_original_cfg_field_is_mapped():
    case = load_case("beats_tiny_ssl")
    model, _ = convert_beats_checkpoint(case.checkpoint)
    cfg = case.spec["config"]
    config = model.config
    assert (config.num_hidden_layers, config.hidden_size, config.intermediate_size) == (
        cfg["encoder_layers"], cfg["encoder_embed_dim"], cfg["encoder_ffn_embed_dim"])
    assert (config.patch_size, config.patch_embed_dim, config.patch_embed_bias) == (
        cfg["input_patch_size"], cfg["embed_dim"], cfg["conv_bias"])
    assert (config.num_buckets, config.max_distance, config.gated_relative_position_bias, config.deep_norm) == (
        cfg["num_buckets"], cfg["max_distance"], cfg["gru_rel_pos"], cfg["deep_norm"])
    assert (config.layerdrop, config.layer_wise_gradient_decay_ratio) == (
        cfg["encoder_layerdrop"], cfg["layer_wise_gradient_decay_ratio"])


def test_tokenizer_without_decay_ratio_takes_the_original_default():
    model, _ = convert_beats_checkpoint(load_case("beats_tokenizer_tiny").checkpoint)
    assert model.config.layer_wise_gradient_decay_ratio == 1.0
    assert (model.config.codebook_size, model.config.codebook_dim) == (256, 32)


def test_folded_weight_norm_gives_the_same_outputs():
    case = load_case("beats_tiny_ssl")
    kept, fe = convert_beats_checkpoint(case.checkpoint)
    folded, _ = convert_beats_checkpoint(case.checkpoint, fold_weight_norm=True)
    assert not folded.config.conv_pos_weight_norm
    assert "encoder.pos_conv_embed.conv.weight" in folded.state_dict()
    inputs = fe(case.unpadded_waveforms(), sampling_rate=16000)
    with torch.no_grad():
        torch.testing.assert_close(folded(**inputs).last_hidden_state, kept(**inputs).last_hidden_state,
                                   atol=1e-5, rtol=1e-5)


def _save_variant(tmp_path, case_name: str, edit) -> str:
    checkpoint = torch.load(load_case(case_name).checkpoint, map_location="cpu", weights_only=True)
    edit(checkpoint)
    path = tmp_path / "variant.pt"
    torch.save(checkpoint, path)
    return str(path)


def test_missing_weight_is_named(tmp_path):
    path = _save_variant(tmp_path, "beats_tiny_ssl", lambda c: c["model"].pop("encoder.layers.1.fc2.weight"))
    with pytest.raises(CheckpointError, match=r"missing weights \['encoder.layers.1.feed_forward.fc2.weight'\]"):
        convert_beats_checkpoint(path)


def test_unknown_weight_is_named(tmp_path):
    path = _save_variant(tmp_path, "beats_tiny_ssl", lambda c: c["model"].update({"extra.weight": torch.zeros(1)}))
    with pytest.raises(CheckpointError, match=r"does not know: \['extra.weight'\]"):
        convert_beats_checkpoint(path)


def test_shape_mismatch_is_named(tmp_path):
    path = _save_variant(tmp_path, "beats_tiny_ssl", lambda c: c["cfg"].update({"encoder_ffn_embed_dim": 96}))
    with pytest.raises(CheckpointError, match="shape mismatches"):
        convert_beats_checkpoint(path)


def test_diverging_shared_position_table_is_refused(tmp_path):
    key = "encoder.layers.1.self_attn.relative_attention_bias.weight"
    # the saved copies share storage with layer 0's table, so replace the tensor rather than edit it in place
    path = _save_variant(tmp_path, "beats_tiny_ssl", lambda c: c["model"].update({key: c["model"][key] + 1.0}))
    with pytest.raises(CheckpointError, match="which all layers share"):
        convert_beats_checkpoint(path)


def test_uninitialised_codebook_is_refused(tmp_path):
    path = _save_variant(tmp_path, "beats_tokenizer_tiny",
                         lambda c: c["model"]["quantize.embedding.initted"].zero_())
    with pytest.raises(CheckpointError, match="never initialised"):
        convert_beats_checkpoint(path)


def test_checkpoint_of_another_family_is_refused(tmp_path):
    # an AST-style DataParallel state dict, as the AST release stores it
    path = tmp_path / "audioset_10_10_0.4593.pth"
    torch.save({"module.v.patch_embed.proj.weight": torch.zeros(2, 1, 16, 16)}, path)
    with pytest.raises(CheckpointError, match="not a BEATs checkpoint: expected a dict with 'cfg'"):
        read_beats_checkpoint(path)
    path = tmp_path / "other.pt"
    torch.save({"cfg": {}, "model": {"module.encoder.weight": torch.zeros(1)}}, path)
    with pytest.raises(CheckpointError, match="lacks"):
        read_beats_checkpoint(path)


def test_truncated_and_missing_files(tmp_path):
    data = load_case("beats_tiny_ssl").checkpoint.read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        read_beats_checkpoint(truncated)
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        read_beats_checkpoint(tmp_path / "absent.pt")


def test_conversion_script_and_cli(tmp_path):
    checkpoint = load_case("beats_tiny_ssl").checkpoint
    script_out, cli_out = tmp_path / "script", tmp_path / "cli"
    subprocess.run(
        [sys.executable, str(REPO / "conversion_scripts" / "convert_beats_original_to_hf.py"),
         "--checkpoint_path", str(checkpoint), "--pytorch_dump_folder_path", str(script_out)],
        check=True, capture_output=True, cwd=tmp_path,
    )
    from audiozoo.cli import main

    assert main(["convert", "beats", "--checkpoint_path", str(checkpoint),
                 "--pytorch_dump_folder_path", str(cli_out)]) == 0
    first = AutoModel.from_pretrained(script_out, dtype=torch.float32).state_dict()
    second = AutoModel.from_pretrained(cli_out, dtype=torch.float32).state_dict()
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)
