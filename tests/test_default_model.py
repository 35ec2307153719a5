"""The bundled default model: a drum-hit classifier that works offline from the CLI and from Python."""

from __future__ import annotations

import json

import audiozoo
from audiozoo.cli import main
from audiozoo.default_model import default_model_path
from conftest import REPO

KICK = REPO / "examples" / "audio" / "drum_kick_rumpf.wav"


def test_default_model_is_small_and_labelled():
    folder = default_model_path()
    assert (folder / "model.safetensors").stat().st_size < 5_000_000
    config = json.loads((folder / "config.json").read_text())
    assert sorted(config["id2label"].values()) == ["crash", "hihat", "kick", "ride", "snare", "tom"]
    assert "Test accuracy" in (folder / "README.md").read_text()


def test_default_classifier_and_cli_without_model(capsys):
    result = audiozoo.default_classifier()(str(KICK), top_k=2)
    assert result[0]["label"] == "kick" and result[0]["score"] > result[1]["score"]
    assert main(["classify", str(KICK), "--top-k", "1"]) == 0
    assert "kick" in capsys.readouterr().out
