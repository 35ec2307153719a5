"""audiozoo finetune / distill: learning on a fixed batch, exact kill-and-resume, accumulation, mixed precision,
manifest checks before training, Trainer compatibility, distillation from a pseudo-label file and from a teacher."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile
import torch

from audiozoo.cli import main
from audiozoo.training.distill import DistillArgs, run_distill
from audiozoo.training.finetune import FinetuneArgs, run_finetune

TINY_BYOL = {"model_type": "audiozoo-byol-a", "version": 1, "hidden_size": 32, "mlp_hidden_size": 32,
             "conv_channels": 8, "dropout": 0.0}
TINY_ATST = {"model_type": "audiozoo-atst-frame", "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
             "intermediate_size": 64, "sed_head": {"seq_len": 25, "window_seconds": 1.0}}


def _tone(frequency: float, seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    time = np.arange(int(seconds * 16000)) / 16000
    return (0.3 * np.sin(2 * np.pi * frequency * time) + 0.02 * rng.standard_normal(time.size)).astype(np.float32)


@pytest.fixture
def tone_data(tmp_path):
    """Three tone classes; 2 train, 1 valid, 1 test clip each; a manifest with a split column; tiny configs."""
    rows = ["file,label,split"]
    for label, frequency in (("low", 220.0), ("mid", 880.0), ("high", 3000.0)):
        for index, split in enumerate(("train", "train", "valid", "test")):
            name = f"{label}_{index}.wav"
            soundfile.write(tmp_path / name, _tone(frequency * (1 + 0.05 * index), 1.0, index), 16000)
            rows.append(f"{name},{label},{split}")
    (tmp_path / "data.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "byol.json").write_text(json.dumps(TINY_BYOL))
    (tmp_path / "atst.json").write_text(json.dumps(TINY_ATST))
    return tmp_path


def _args(folder, out, **overrides) -> FinetuneArgs:
    values = dict(data=str(folder / "data.csv"), output_dir=str(out), config=str(folder / "byol.json"), clip_seconds=1.0,
                  batch_size=3, lr=3e-3, epochs=50, seed=0, cpu=True, patience=100)
    values.update(overrides)
    return FinetuneArgs(**values)


def test_loss_goes_down_on_a_fixed_batch(tone_data, tmp_path):
    # batch_size 6 = the whole training split: every step sees the same batch
    result = run_finetune(_args(tone_data, tmp_path / "run", batch_size=6, max_steps=20, weight_decay=0.0,
                                scheduler="constant", lr=1e-2, patience=100))
    losses = [loss for _, loss in result.losses]
    assert len(losses) == 20 and losses[-1] < 0.6 * losses[0]
    assert (tmp_path / "run" / "config.json").is_file() and (tmp_path / "run" / "preprocessor_config.json").is_file()
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["id2label"] == {"0": "high", "1": "low", "2": "mid"}


def test_kill_and_resume_continues_exactly(tone_data, tmp_path):
    augment = dict(gain_db=6.0, time_masks=1, time_mask_width=5, frequency_masks=1, frequency_mask_width=4,
                   max_steps=5, checkpoint_every=1)
    full = run_finetune(_args(tone_data, tmp_path / "full", **augment))
    first = run_finetune(_args(tone_data, tmp_path / "killed", stop_after_steps=3, **augment))
    assert [step for step, _ in first.losses] == [1, 2, 3]
    resumed = run_finetune(_args(tone_data, tmp_path / "killed", resume="latest", **augment))
    assert resumed.losses[:3] == first.losses  # restored from the checkpoint
    assert resumed.losses[3:] == full.losses[3:]  # the same next losses as the uninterrupted run (mid-epoch)
    assert len(full.losses) == 5


def test_resume_is_exact_with_random_crops(tone_data, tmp_path):
    """Clips longer than the window: crops must not depend on what the loader prefetched before the checkpoint."""
    lines = ["file,label,split"]
    for label, frequency in (("low", 220.0), ("high", 3000.0)):
        for index, split in enumerate(("train", "train", "train", "valid")):
            soundfile.write(tone_data / f"long_{label}_{index}.wav", _tone(frequency, 1.5, index), 16000)
            lines.append(f"long_{label}_{index}.wav,{label},{split}")
    (tone_data / "long.csv").write_text("\n".join(lines) + "\n")
    common = dict(data=str(tone_data / "long.csv"), batch_size=2, max_steps=5, checkpoint_every=1)
    full = run_finetune(_args(tone_data, tmp_path / "full", **common))
    run_finetune(_args(tone_data, tmp_path / "killed", stop_after_steps=3, **common))
    resumed = run_finetune(_args(tone_data, tmp_path / "killed", resume="latest", **common))
    assert resumed.losses == full.losses


def test_accumulation_and_mixed_precision(tone_data, tmp_path):
    result = run_finetune(_args(tone_data, tmp_path / "acc", batch_size=2, gradient_accumulation_steps=3, epochs=1))
    assert [step for step, _ in result.losses] == [1]  # 3 batches of 2 -> one optimiser step
    result = run_finetune(_args(tone_data, tmp_path / "bf16", max_steps=2, mixed_precision="bf16"))
    assert all(np.isfinite(loss) for _, loss in result.losses)


def test_bad_manifests_fail_before_training_naming_the_row(tone_data, tmp_path):
    manifest = tone_data / "data.csv"
    lines = manifest.read_text().splitlines()
    (tone_data / "missing.csv").write_text("\n".join(lines + ["nowhere.wav,low,train"]) + "\n")
    with pytest.raises(FileNotFoundError, match="missing.csv, line 14: audio file not found"):
        run_finetune(_args(tone_data, tmp_path / "a", data=str(tone_data / "missing.csv")))
    (tone_data / "labels.txt").write_text("low\nmid\n")
    with pytest.raises(ValueError, match=r"line \d+: unknown label\(s\) \['high'\]"):
        run_finetune(_args(tone_data, tmp_path / "b", labels=str(tone_data / "labels.txt")))
    soundfile.write(tone_data / "fast.wav", _tone(440.0, 1.0, 9), 44100)
    (tone_data / "rate.csv").write_text("\n".join(lines + ["fast.wav,low,train"]) + "\n")
    with pytest.raises(ValueError, match="rate.csv, line 14: sampled at 44100 Hz, the model expects 16000 Hz"):
        run_finetune(_args(tone_data, tmp_path / "c", data=str(tone_data / "rate.csv")))
    assert not (tmp_path / "c" / "checkpoints").exists()  # nothing was trained


def test_cli_finetune_writes_a_ready_model(tone_data, tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["finetune", "--data", str(tone_data / "data.csv"), "--config", str(tone_data / "byol.json"),
                 "--output_dir", str(out), "--clip_seconds", "1", "--epochs", "2", "--batch_size", "3", "--cpu"]) == 0
    assert "test accuracy" in capsys.readouterr().out
    assert main(["classify", str(tone_data / "low_0.wav"), "--model", str(out), "--top-k", "1"]) == 0


def test_models_work_under_the_transformers_trainer(tmp_path):
    from transformers import Trainer, TrainingArguments

    import audiozoo

    config = audiozoo.ByolAConfig(**{k: v for k, v in TINY_BYOL.items() if k != "model_type"},
                                  id2label={0: "a", 1: "b"}, label2id={"a": 0, "b": 1})
    model = audiozoo.ByolAForAudioClassification(config)
    extractor = audiozoo.ByolAFeatureExtractor()
    waves = [_tone(220.0 if index % 2 else 3000.0, 1.0, index) for index in range(8)]
    features = extractor(waves, sampling_rate=16000)["input_values"]
    rows = [{"input_values": features[i], "labels": torch.tensor(i % 2)} for i in range(8)]
    trainer = Trainer(model=model, args=TrainingArguments(output_dir=str(tmp_path / "trainer"), use_cpu=True,
                                                          per_device_train_batch_size=4, num_train_epochs=3,
                                                          learning_rate=3e-3, report_to="none", save_strategy="no"),
                      train_dataset=rows)
    history = trainer.train()
    assert np.isfinite(history.training_loss)
    frame_config = audiozoo.AtstFrameConfig(**{k: v for k, v in TINY_ATST.items() if k != "model_type"},
                                            id2label={0: "a", 1: "b"}, label2id={"a": 0, "b": 1})
    frame_model = audiozoo.AtstFrameForAudioFrameClassification(frame_config)
    frame_rows = [{"input_values": torch.randn(1, 64, 101), "labels": torch.rand(25, 2).round()} for _ in range(4)]
    Trainer(model=frame_model, args=TrainingArguments(output_dir=str(tmp_path / "frames"), use_cpu=True,
                                                      per_device_train_batch_size=2, max_steps=2, report_to="none",
                                                      save_strategy="no"), train_dataset=frame_rows).train()


def _events(tone_data) -> None:
    lines = ["filename\tonset\toffset\tevent_label"]
    for path in sorted(tone_data.glob("*.wav")):
        label = path.stem.split("_")[0]
        lines.append(f"{path.name}\t0.2\t0.7\t{label}")
    (tone_data / "events.tsv").write_text("\n".join(lines) + "\n")


def test_distillation_from_a_pseudo_label_file_and_from_a_teacher(tone_data, tmp_path):
    import h5py

    _events(tone_data)
    names = sorted(path.name for path in tone_data.glob("*.wav"))
    rng = np.random.default_rng(0)
    with h5py.File(tone_data / "pseudo.h5", "w") as handle:
        handle["filenames"] = np.array([name.encode() for name in names])
        handle["strong_logits"] = rng.standard_normal((len(names), 3, 25)).astype(np.float16)
    common = dict(data=str(tone_data / "data.csv"), output_dir=str(tmp_path / "student"), config=str(tone_data / "atst.json"),
                  events=str(tone_data / "events.tsv"), clip_seconds=1.0, batch_size=3, max_steps=3, epochs=2, cpu=True)
    result = run_distill(DistillArgs(**common, pseudo_labels=str(tone_data / "pseudo.h5")))
    assert len(result.losses) == 3 and all(np.isfinite(loss) for _, loss in result.losses)
    assert "frame_micro_f1" in result.history[0] and 0.0 <= result.history[0]["psds1"] <= 1.0
    # the student itself becomes a teacher run online
    common["output_dir"] = str(tmp_path / "student2")
    result = run_distill(DistillArgs(**common, teachers=(str(tmp_path / "student"),), distillation_loss_weight=0.5))
    assert len(result.losses) == 3
    with h5py.File(tone_data / "bad.h5", "w") as handle:
        handle["filenames"] = np.array([b"other.wav"])
        handle["strong_logits"] = np.zeros((1, 3, 25), dtype=np.float16)
    with pytest.raises(ValueError, match="no pseudo labels for"):
        run_distill(DistillArgs(**common, pseudo_labels=str(tone_data / "bad.h5")))


def test_datasets_folder_is_read_without_torchcodec(tone_data, tmp_path):
    from datasets import Audio, Dataset, DatasetDict

    def split(names):
        rows = {"audio": [str(tone_data / name) for name in names], "label": [name.split("_")[0] for name in names]}
        return Dataset.from_dict(rows).cast_column("audio", Audio())

    names = sorted(path.name for path in tone_data.glob("*.wav"))
    dataset = DatasetDict({"train": split([n for n in names if n.endswith(("_0.wav", "_1.wav"))]),
                           "validation": split([n for n in names if n.endswith("_2.wav")]),
                           "test": split([n for n in names if n.endswith("_3.wav")])})
    dataset.save_to_disk(str(tmp_path / "hf"))
    result = run_finetune(_args(tone_data, tmp_path / "out", data=str(tmp_path / "hf"), max_steps=2))
    assert result.sizes == {"train": 6, "valid": 3, "test": 3} and len(result.losses) == 2


def test_distillation_loss_goes_down_on_a_fixed_batch(tone_data, tmp_path):
    import h5py

    _events(tone_data)
    names = sorted(path.name for path in tone_data.glob("*.wav"))
    with h5py.File(tone_data / "pseudo.h5", "w") as handle:
        handle["filenames"] = np.array([name.encode() for name in names])
        handle["strong_logits"] = np.full((len(names), 3, 25), -3.0, dtype=np.float16)
    result = run_distill(DistillArgs(
        data=str(tone_data / "data.csv"), output_dir=str(tmp_path / "kd"), config=str(tone_data / "atst.json"),
        events=str(tone_data / "events.tsv"), clip_seconds=1.0, batch_size=6, max_steps=15, epochs=100, lr=3e-3,
        weight_decay=0.0, scheduler="constant", patience=100, cpu=True, pseudo_labels=str(tone_data / "pseudo.h5")))
    losses = [loss for _, loss in result.losses]
    assert len(losses) == 15 and losses[-1] < 0.6 * losses[0]
