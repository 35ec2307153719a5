"""Sharing models: every saved folder carries its remote code (fine-tuned ones included), and `push_model_folder`
uploads exactly the model files, with a card, to a stand-in for the Hub that records what would be sent."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile
import torch
from transformers import AutoFeatureExtractor, AutoModelForAudioClassification, AutoModelForAudioFrameClassification

from audiozoo.families import family_of
from audiozoo.hub import push as push_module
from audiozoo.hub.push import MODEL_FILES, check_model_folder, push_model_folder
from audiozoo.hub.remote_code import auto_map, remote_code_file_names

from conftest import EXAMPLE_CLIP

RESAVE_WITHOUT_AUDIOZOO = textwrap.dedent(
    """
    import json, sys
    class HideAudiozoo:  # make `import audiozoo` fail, whatever sys.path says
        def find_spec(self, name, path=None, target=None):
            if name == "audiozoo" or name.startswith("audiozoo."):
                raise ImportError("audiozoo is hidden in this test")
    sys.meta_path.insert(0, HideAudiozoo())
    import soundfile, torch
    import transformers
    folder, clip, resaved, auto_name = sys.argv[1:5]
    auto = getattr(transformers, auto_name)
    samples, rate = soundfile.read(clip, dtype="float32")
    samples = samples[: 2 * rate]

    def run(path):
        fe = transformers.AutoFeatureExtractor.from_pretrained(path, trust_remote_code=True)
        model = auto.from_pretrained(path, trust_remote_code=True, dtype=torch.float32).eval()
        with torch.no_grad():
            return fe, model, model(**fe(samples, sampling_rate=rate)).logits

    fe, model, logits = run(folder)
    model.save_pretrained(resaved)  # a folder saved by the remote code itself: transformers' own saving
    fe.save_pretrained(resaved)
    _, resaved_model, resaved_logits = run(resaved)
    assert "audiozoo" not in sys.modules
    print(json.dumps({"class": type(model).__name__, "module": type(model).__module__,
                      "logits": logits.tolist(), "resaved": resaved_logits.tolist()}))
    """
)


def _environment(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "PYTHONPATH": ""}


def _code_and_json(folder: Path) -> set[str]:
    return {path.name for path in folder.iterdir() if path.suffix in (".py", ".json")}


@pytest.mark.parametrize(
    "case,auto,order",
    [("byola_v2_d3072", AutoModelForAudioClassification, "model, feature extractor"),
     ("beats_tiny_finetuned", AutoModelForAudioClassification, "feature extractor, model"),
     ("sed_atstf_tiny", AutoModelForAudioFrameClassification, "model, feature extractor")],
)
def test_a_saved_model_loads_without_audiozoo(converted_dir, tmp_path, case, auto, order):
    """What `finetune` does at its end: a model loaded with audiozoo, saved with save_pretrained. The folder loads
    with plain transformers (audiozoo hidden), with the same outputs; saved again by that remote code, it still does."""
    fe = AutoFeatureExtractor.from_pretrained(converted_dir(case))
    torch.manual_seed(0)
    model = auto.from_pretrained(converted_dir(case), dtype=torch.float32).eval()
    folder = tmp_path / "finetuned"
    for saved in order.split(", "):
        (model if saved == "model" else fe).save_pretrained(folder)
    family = family_of(model.config.model_type)
    assert {*remote_code_file_names(family), "config.json", "preprocessor_config.json"} == _code_and_json(folder)
    assert json.loads((folder / "config.json").read_text())["auto_map"] == auto_map(family)

    completed = subprocess.run(
        [sys.executable, "-c", RESAVE_WITHOUT_AUDIOZOO, str(folder), str(EXAMPLE_CLIP), str(tmp_path / "resaved"),
         auto.__name__],
        capture_output=True, text=True, env=_environment(tmp_path), cwd=tmp_path,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    remote = json.loads(completed.stdout.strip().splitlines()[-1])
    assert remote["class"] == type(model).__name__ and remote["module"].startswith("transformers_modules.")

    samples, rate = soundfile.read(EXAMPLE_CLIP, dtype="float32")
    with torch.no_grad():
        local = model(**fe(samples[: 2 * rate], sampling_rate=rate)).logits
    torch.testing.assert_close(torch.tensor(remote["logits"]), local, atol=0, rtol=0)
    torch.testing.assert_close(torch.tensor(remote["resaved"]), local, atol=0, rtol=0)
    # transformers' own saving of remote code copies the loaded modules and keeps the full auto_map
    resaved = tmp_path / "resaved"
    assert set(remote_code_file_names(family)) <= {path.name for path in resaved.iterdir()}
    assert json.loads((resaved / "config.json").read_text())["auto_map"] == auto_map(family)


def test_saving_again_and_in_either_order_leaves_a_complete_folder(converted_dir, tmp_path):
    source = converted_dir("byola_v2_d3072")
    fe = AutoFeatureExtractor.from_pretrained(source)
    model = AutoModelForAudioClassification.from_pretrained(source, dtype=torch.float32)
    family = family_of(model.config.model_type)
    complete = {*remote_code_file_names(family), "config.json", "preprocessor_config.json"}
    extractor_map = {"AutoFeatureExtractor": "feature_extraction_byol_a.ByolAFeatureExtractor"}

    alone = tmp_path / "extractor"
    fe.save_pretrained(alone)  # a feature extractor alone: its own module and what it imports
    assert {"feature_extraction_byol_a.py", "melspec.py", "preprocessor_config.json"} <= _code_and_json(alone)
    assert "modeling_byol_a.py" not in _code_and_json(alone)
    assert json.loads((alone / "preprocessor_config.json").read_text())["auto_map"] == extractor_map

    for order in (("model", "fe"), ("fe", "model"), ("model", "model", "fe", "fe")):
        folder = tmp_path / "-".join(order)
        for saved in order:
            (model if saved == "model" else fe).save_pretrained(folder)
        assert _code_and_json(folder) == complete, order
        assert json.loads((folder / "config.json").read_text())["auto_map"] == auto_map(family)
        assert json.loads((folder / "preprocessor_config.json").read_text())["auto_map"] == extractor_map

    other_rank = tmp_path / "other-rank"
    model.save_pretrained(other_rank, is_main_process=False)  # only the main process writes
    assert not other_rank.exists() or not any(other_rank.glob("*.py"))


class FakeCommitApi:
    """transformers' `hf_api()` stand-in: records the files of each commit instead of sending them."""

    def __init__(self):
        self.commits: list[set[str]] = []

    def create_repo(self, repo_id, **kwargs):
        return SimpleNamespace(repo_id=repo_id)

    def create_commit(self, repo_id, operations, **kwargs):
        self.commits.append({operation.path_in_repo for operation in operations})


def test_push_to_hub_methods_send_the_code(converted_dir, tmp_path, monkeypatch):
    import transformers.feature_extraction_utils
    import transformers.modeling_utils
    import transformers.utils.hub

    api = FakeCommitApi()
    for module in (transformers.utils.hub, transformers.modeling_utils, transformers.feature_extraction_utils):
        monkeypatch.setattr(module, "hf_api", lambda: api)
    card = SimpleNamespace(save=lambda path: Path(path).write_text("card"))
    monkeypatch.setattr(transformers.utils.hub, "create_and_tag_model_card", lambda *args, **kwargs: card)
    monkeypatch.setattr(transformers.modeling_utils, "create_and_tag_model_card", lambda *args, **kwargs: card)

    source = converted_dir("beats_tiny_finetuned")
    model = AutoModelForAudioClassification.from_pretrained(source, dtype=torch.float32)
    fe = AutoFeatureExtractor.from_pretrained(source)
    code = set(remote_code_file_names(family_of(model.config.model_type)))

    model.push_to_hub("me/beats")
    assert code | {"config.json", "model.safetensors", "README.md"} == api.commits[-1]
    fe.push_to_hub("me/beats")
    assert {"feature_extraction_beats.py", "preprocessor_config.json"} <= api.commits[-1]
    model.save_pretrained(tmp_path / "pushed", push_to_hub=True, repo_id="me/beats")
    assert code | {"config.json", "model.safetensors", "README.md"} == api.commits[-1]


# -- push_model_folder ---------------------------------------------------------------------------------------------


class FakeHub:
    """`HfApi.create_repo` / `HfApi.upload_folder` stand-ins: record the calls and the files `upload_folder` would
    send (matched with huggingface_hub's own filter, as the real upload matches them)."""

    def __init__(self):
        self.repos: list[dict] = []
        self.uploads: list[dict] = []

    def install(self, monkeypatch) -> FakeHub:
        import huggingface_hub
        from huggingface_hub.utils import filter_repo_objects

        hub = self

        def create_repo(api, repo_id, **kwargs):
            hub.repos.append({"repo_id": repo_id, **kwargs})
            return SimpleNamespace(repo_id=repo_id if "/" in repo_id else f"me/{repo_id}")

        def upload_folder(api, *, folder_path, repo_id, allow_patterns=None, ignore_patterns=None, **kwargs):
            folder = Path(folder_path)
            paths = sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file())
            sent = set(filter_repo_objects(paths, allow_patterns=allow_patterns, ignore_patterns=ignore_patterns))
            hub.uploads.append({"repo_id": repo_id, "sent": sent, "allow_patterns": allow_patterns, **kwargs})

        monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", create_repo)
        monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)
        return self


def _tone(frequency: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    time = np.arange(16000) / 16000
    return (0.3 * np.sin(2 * np.pi * frequency * time) + 0.02 * rng.standard_normal(time.size)).astype(np.float32)


@pytest.fixture
def finetuned_folder(converted_dir, tmp_path, one_thread):
    """A real `audiozoo finetune` output (tiny BYOL-A from a converted fixture, two tone classes, one epoch)."""
    from audiozoo.training.finetune import FinetuneArgs, run_finetune

    data = tmp_path / "tones"
    data.mkdir()
    rows = ["file,label,split"]
    for label, frequency in (("low", 220.0), ("high", 3000.0)):
        for index, split in enumerate(("train", "train", "valid", "test")):
            soundfile.write(data / f"{label}_{index}.wav", _tone(frequency * (1 + 0.05 * index), index), 16000)
            rows.append(f"{label}_{index}.wav,{label},{split}")
    (data / "tones.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "run"
    run_finetune(FinetuneArgs(data=str(data / "tones.csv"), output_dir=str(out), model=str(converted_dir("byola_v2_d3072")),
                              clip_seconds=1.0, batch_size=2, epochs=1, cpu=True, seed=0))
    return out


def test_push_sends_exactly_the_model_files_of_a_finetuned_folder(finetuned_folder, monkeypatch):
    hub = FakeHub().install(monkeypatch)
    folder = finetuned_folder
    assert {"checkpoints", "best", "results.json"} <= {path.name for path in folder.iterdir()}
    (folder / "notes.txt").write_text("mine")
    (folder / "train_my_model.py").write_text("print('a script of mine')")  # a .py that is no model code
    (folder / ".env").write_text("TOKEN=secret")
    (folder / "logs").mkdir()
    (folder / "logs" / "config.json").write_text("{}")

    # BYOL-A's released weights may not be redistributed; these were fine-tuned from a random-weight fixture
    sent = push_model_folder(folder, "me/tones", private=True, own_weights=True)

    family = family_of("audiozoo-byol-a")
    expected = {"config.json", "model.safetensors", "preprocessor_config.json", "README.md",
                *remote_code_file_names(family)}
    assert set(sent) == expected == hub.uploads[0]["sent"]
    assert hub.repos == [{"repo_id": "me/tones", "private": True, "exist_ok": True}]
    assert hub.uploads[0]["repo_id"] == "me/tones"
    assert hub.uploads[0]["allow_patterns"] == [*MODEL_FILES, *remote_code_file_names(family)]
    assert not any("*" in pattern for pattern in hub.uploads[0]["allow_patterns"])

    card = (folder / "README.md").read_text()
    results = json.loads((folder / "results.json").read_text())
    # a fine-tune of BYOL-A weights keeps NTT's evaluation license (no redistribution), and the card says so
    assert card.startswith("---\nlibrary_name: transformers\nlicense: other\n"
                           "license_name: ntt-software-license-agreement-for-evaluation\n"
                           "license_link: https://github.com/nttcslab/byol-a/blob/")
    assert "pipeline_tag: audio-classification\n" in card and "keep this model to yourself" in card
    assert "- fine-tuned" in card and "base_model:" not in card  # the run recorded no Hub base model
    assert "# tones" in card and 'pipeline("audio-classification", model="me/tones")' in card
    assert "| labels | 2 |" in card and "| task | single-label clip classification |" in card
    assert "| clips (train / valid / test) | 4 / 2 / 2 |" in card
    assert f"| accuracy | {results['test']['accuracy']:.4f} |" in card
    assert "`high`, `low`" in card and "BYOL" in card
    # the run's settings are recorded, and the card names the base model and data by name (never local paths)
    assert "byola_v2_d3072" in results["settings"]["model"] and results["settings"]["epochs"] == 1
    assert "`tones.csv`" in card and str(folder.parent) not in card


def test_push_writes_missing_code_keeps_a_card_and_sends_shards(converted_dir, tmp_path, monkeypatch):
    hub = FakeHub().install(monkeypatch)
    source = converted_dir("byola_v2_d3072")
    folder = tmp_path / "old"
    shutil.copytree(source, folder)
    family = check_model_folder(folder)
    for name in remote_code_file_names(family):  # a folder saved before the code was written on save
        (folder / name).unlink()
    config = json.loads((folder / "config.json").read_text())
    del config["auto_map"]
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "README.md").write_text("my own card")

    sent = push_model_folder(folder, "me/old", commit_message="first", own_weights=True)  # random-weight fixture
    assert set(remote_code_file_names(family)) <= set(sent) == hub.uploads[0]["sent"]
    assert json.loads((folder / "config.json").read_text())["auto_map"] == auto_map(family)
    assert (folder / "README.md").read_text() == "my own card"
    assert hub.uploads[0]["commit_message"] == "first"

    sharded = tmp_path / "sharded"
    model = AutoModelForAudioClassification.from_pretrained(source, dtype=torch.float32)
    model.save_pretrained(sharded, max_shard_size="1MB")
    AutoFeatureExtractor.from_pretrained(source).save_pretrained(sharded)
    shards = sorted(path.name for path in sharded.glob("model-*-of-*.safetensors"))
    assert len(shards) > 1
    (sharded / "model-00001-of-00001.safetensors.bak").write_text("stale")
    sent = push_model_folder(sharded, "sharded", own_weights=True)  # no namespace: the repo id create_repo resolves is used
    assert {*shards, "model.safetensors.index.json"} <= set(sent) == hub.uploads[1]["sent"]
    assert "model-00001-of-00001.safetensors.bak" not in sent and hub.uploads[1]["repo_id"] == "me/sharded"
    assert 'from_pretrained("me/sharded"' in (sharded / "README.md").read_text()  # the generic card


def test_finetuned_card_with_recorded_settings(converted_dir):
    from audiozoo import BeatsConfig
    from audiozoo.hub.model_cards import render_finetuned_card

    config = BeatsConfig(num_hidden_layers=1, hidden_size=32, num_attention_heads=2, intermediate_size=64,
                         patch_embed_dim=16, id2label={0: "dog", 1: "rain", 2: "siren"},
                         problem_type="multi_label_classification",
                         architectures=["BeatsForAudioClassification"])
    results = {"output_dir": "/home/me/runs/esc", "best_epoch": 3, "best_metric": 0.61, "metric": "mAP",
               "test": {"mAP": 0.5812, "mAUC": 0.9, "accuracy": float("nan")},
               "history": [{"epoch": 0, "step": 10, "mAP": 0.4}, {"epoch": 3, "step": 40, "mAP": 0.61}],
               "losses": [[1, 0.9], [40, 0.2]], "seconds": 600.0, "sizes": {"train": 80, "valid": 10, "test": 10},
               "settings": {"model": "audiozoo/beats-iter3-plus-as2m", "data": "/home/me/data/esc.csv",
                            "epochs": 5, "lr": 5e-5, "batch_size": 8, "mixup_alpha": 0.5, "seed": 1}}
    card = render_finetuned_card(config, results, "me/beats-esc")
    assert "base_model: audiozoo/beats-iter3-plus-as2m\n" in card
    assert "| base model | `audiozoo/beats-iter3-plus-as2m` |" in card and "| data | `esc.csv` |" in card
    assert "/home/me" not in card  # local paths stay local
    assert "| task | multi-label clip classification |" in card and "| labels | 3 |" in card
    assert "| mAP | 0.5812 |" in card and "| accuracy | n/a |" in card and "| learning rate | 5e-05 |" in card
    assert "| best epoch (kept) | 3 (validation mAP 0.6100) |" in card and "| 3 | 40 | 0.6100 |" in card
    assert "a sigmoid" in card and "@inproceedings{chen2023beats" in card


def test_finetuned_card_of_a_frame_model_without_a_test_split():
    from audiozoo.hub.model_cards import render_finetuned_card

    family = family_of("audiozoo-atst-frame")
    config = family.load("AtstFrameConfig")(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                            intermediate_size=64, id2label={0: "speech", 1: "dog"},
                                            problem_type="multi_label_classification",
                                            architectures=["AtstFrameForAudioFrameClassification"])
    results = {"metric": "frame_micro_f1", "test": {}, "best_epoch": 0, "best_metric": 0.2, "losses": [[3, 0.1]],
               "history": [{"epoch": 0, "step": 3, "frame_micro_f1": 0.2, "psds1": float("nan")}],
               "sizes": {"train": 3, "valid": 1, "test": 0}, "seconds": 3.0}
    card = render_finetuned_card(config, results, "me/sed")
    assert "- sound-event-detection\n" in card and "AutoModelForAudioFrameClassification" in card
    assert 'pipeline("sound-event-detection", model="me/sed")' in card and "= 25 frames per second" in card
    assert "The run had no test split" in card and "| 0 | 3 | 0.2000 | n/a |" in card


def test_push_refuses_what_is_not_a_model_folder(converted_dir, tmp_path, monkeypatch):
    hub = FakeHub().install(monkeypatch)
    with pytest.raises(FileNotFoundError, match="is no folder"):
        push_model_folder(tmp_path / "nowhere", "me/x")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "model.safetensors").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="has no config.json: it is not a model folder"):
        push_model_folder(empty, "me/x")
    (empty / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ValueError, match="model_type 'bert' is not an audiozoo model"):
        push_model_folder(empty, "me/x")

    folder = tmp_path / "model"
    shutil.copytree(converted_dir("byola_v2_d3072"), folder)
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    with pytest.raises(FileNotFoundError, match="has no weights.*only PyTorch pickles"):
        push_model_folder(folder, "me/x")
    (folder / "pytorch_model.bin").rename(folder / "model.safetensors")
    (folder / "preprocessor_config.json").unlink()
    with pytest.raises(FileNotFoundError, match="no preprocessor_config.json"):
        push_model_folder(folder, "me/x")
    assert hub.repos == [] and hub.uploads == []  # nothing is created or sent for a bad folder


def test_conversion_push_sends_the_allow_list(converted_dir, tmp_path, monkeypatch):
    from audiozoo.conversion.output import save_converted

    hub = FakeHub().install(monkeypatch)
    source = converted_dir("beats_tiny_finetuned")
    model = AutoModelForAudioClassification.from_pretrained(source, dtype=torch.float32)
    fe = AutoFeatureExtractor.from_pretrained(source)
    out = tmp_path / "converted"
    out.mkdir()
    (out / "stray.log").write_text("left over")
    save_converted(model, fe, out, card="the release card", push_to_hub="me/converted")
    family = family_of("audiozoo-beats")
    assert hub.uploads[0]["sent"] == {"config.json", "model.safetensors", "preprocessor_config.json", "README.md",
                                      *remote_code_file_names(family)}
    assert hub.uploads[0]["commit_message"] == "Convert with audiozoo"
    assert (out / "README.md").read_text() == "the release card"


def test_push_module_is_torch_free_at_import():
    script = ("import os, sys; os.environ['AUDIOZOO_DEFER_REGISTRATION'] = '1'; import audiozoo.hub.push; "
              "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'transformers'}))")
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.strip() == "[]"
    assert push_module.push_model_folder is push_model_folder


@pytest.mark.parametrize("case", ["byola_v1_d512", "sed_m2d_tiny", "sed_asit_tiny"])
def test_weights_whose_license_forbids_redistribution_are_not_pushed(case, converted_dir, tmp_path, monkeypatch):
    """BYOL-A and the M2D students (NTT's evaluation license) and the ASiT students (no license): refused unless the
    caller says the weights are theirs to share; nothing is created or sent."""
    hub = FakeHub().install(monkeypatch)
    folder = tmp_path / case
    shutil.copytree(converted_dir(case), folder)
    with pytest.raises(PermissionError, match="does not allow redistribution.*own_weights"):
        push_model_folder(folder, "me/x")
    assert hub.repos == [] and hub.uploads == []
    assert "config.json" in push_model_folder(folder, "me/x", own_weights=True)
