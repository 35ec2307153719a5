"""Clip classifiers of the PretrainedSED families (ATST-Frame, fPaSST, ASiT, M2D, frame-MobileNet): Auto loading of
converted frame folders (their own head's clip logits, exactly), the pooled linear head without a PretrainedSED
head, pipeline("audio-classification") on real clips with 10 s windows for long ones, remote code, fine-tuning."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile
import torch
from transformers import (
    AutoFeatureExtractor,
    AutoModelForAudioClassification,
    AutoModelForAudioFrameClassification,
    pipeline,
)

import audiozoo
from audiozoo.audio.io import resample
from audiozoo.pipelines import audio_classification
from audiozoo.pipelines.audio_classification import aggregate_windows, split_windows
from conftest import EXAMPLE_CLIP, REPO, sweep_clip
from test_remote_code import HIDDEN_PACKAGE_SCRIPT

# family -> (converted tiny case, class-name prefix)
CASES = {
    "atst_frame": ("sed_atstf_tiny", "AtstFrame"),
    "fpasst": ("sed_fpasst_tiny", "Fpasst"),
    "asit": ("sed_asit_tiny", "Asit"),
    "m2d": ("sed_m2d_tiny", "M2d"),
    "frame_mn": ("sed_frame_mn06", "FrameMn"),
}
SHARED_CLIP = REPO.parent / "shared" / "audio" / "clip_a_32k.wav"
SMALL_VIT = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
LABELS = {"id2label": {0: "a", 1: "b", 2: "c"}, "label2id": {"a": 0, "b": 1, "c": 2}}


def _waveforms() -> list[np.ndarray]:
    """The real example clip's first 3 s and a 2 s sweep: two lengths, so padding paths are exercised too."""
    clip, _ = soundfile.read(EXAMPLE_CLIP, dtype="float32")
    return [clip[: 3 * 16000], sweep_clip(440.0, 3.0, 0)]


@pytest.fixture(scope="module")
def long_clip():
    """25 s of a real recording at 32 kHz (the pipeline resamples): the project's test recording tiled, or, where
    it is not available, the example clip tiled at its own 16 kHz."""
    if SHARED_CLIP.exists():
        samples, rate = soundfile.read(SHARED_CLIP, dtype="float32")
    else:
        samples, rate = soundfile.read(EXAMPLE_CLIP, dtype="float32")
    return np.tile(samples, int(np.ceil(25 * rate / samples.size)))[: 25 * rate], rate


@pytest.mark.parametrize("case", [case for case, _ in CASES.values()] + ["sed_wrapper_rnn_attention"])
def test_auto_loads_a_converted_frame_folder_with_the_same_weights(converted_dir, case):
    folder = converted_dir(case)
    config = json.loads((folder / "config.json").read_text())
    prefix = next((prefix for name, prefix in CASES.values() if name == case), "AtstFrame")
    assert config["architectures"] == [f"{prefix}ForAudioFrameClassification"] and config["sed_head"]
    assert config["auto_map"]["AutoModelForAudioClassification"].endswith(f".{prefix}ForAudioClassification")
    clip, info = AutoModelForAudioClassification.from_pretrained(folder, dtype=torch.float32, output_loading_info=True)
    frame = AutoModelForAudioFrameClassification.from_pretrained(folder, dtype=torch.float32).eval()
    assert type(clip).__name__ == f"{prefix}ForAudioClassification" and clip.uses_sed_head
    assert not any(info.values()), info
    assert clip.state_dict().keys() == frame.state_dict().keys()
    clip.eval()
    fe = AutoFeatureExtractor.from_pretrained(folder)
    inputs = fe(_waveforms(), sampling_rate=16000, return_tensors="pt")
    with torch.no_grad():
        output, expected = clip(**inputs), frame(**inputs).clip_logits
    assert torch.equal(output.logits, expected)
    assert clip.window_seconds == 10.0
    labels = torch.zeros_like(expected)
    labels[0, 1] = 1.0
    loss = clip(**inputs, labels=labels).loss  # float targets: multi-label BCE
    torch.testing.assert_close(loss, torch.nn.functional.binary_cross_entropy_with_logits(expected, labels))


def _tiny(family: str, **config):
    """A tiny config of the family without a PretrainedSED head, and its feature extractor."""
    if family == "frame_mn":
        return audiozoo.FrameMnConfig(width_mult=0.3, **LABELS, **config), audiozoo.PasstMelFeatureExtractor(
            periodic_window=False)
    config_class = {"atst_frame": audiozoo.AtstFrameConfig, "fpasst": audiozoo.FpasstConfig,
                    "asit": audiozoo.AsitConfig, "m2d": audiozoo.M2dConfig}[family]
    fe_class = {"atst_frame": audiozoo.AtstFrameFeatureExtractor, "fpasst": audiozoo.PasstMelFeatureExtractor,
                "asit": audiozoo.AsitFeatureExtractor, "m2d": audiozoo.M2dFeatureExtractor}[family]
    return config_class(**SMALL_VIT, **LABELS, **config), fe_class()


@pytest.mark.parametrize("family", list(CASES))
def test_pooled_head_without_sed_head(family, tmp_path):
    torch.manual_seed(0)
    config, fe = _tiny(family, problem_type="single_label_classification")
    model = AutoModelForAudioClassification.from_config(config)
    assert type(model).__name__ == f"{CASES[family][1]}ForAudioClassification"
    assert not model.uses_sed_head and not hasattr(model, "sed_head") and model.window_seconds == 10.0
    inputs = fe(_waveforms(), sampling_rate=16000, return_tensors="pt")
    output = model(**inputs, labels=torch.tensor([0, 2]))
    assert output.logits.shape == (2, 3)
    # the documented pooling: ASiT's CLS token, the mean over time of the output sequence for the others
    sequence = model.encoder(**inputs).last_hidden_state
    pooled = sequence[:, 0] if family == "asit" else sequence.mean(dim=1)
    torch.testing.assert_close(output.logits, model.classifier(pooled))
    torch.testing.assert_close(output.loss, torch.nn.functional.cross_entropy(output.logits, torch.tensor([0, 2])))
    output.loss.backward()
    assert model.classifier.dense.weight.grad.abs().sum() > 0
    model.eval()
    model.save_pretrained(tmp_path)
    reloaded, info = AutoModelForAudioClassification.from_pretrained(tmp_path, output_loading_info=True)
    assert not any(info.values()), info
    with torch.no_grad():
        torch.testing.assert_close(reloaded.eval()(**inputs).logits, model(**inputs).logits)


@pytest.mark.parametrize("family", list(CASES))
def test_pipeline_classifies_a_real_clip_and_long_clips_by_windows(converted_dir, family, long_clip):
    folder = converted_dir(CASES[family][0])
    classify = pipeline("audio-classification", model=str(folder), dtype=torch.float32)
    assert type(classify.model).__name__ == f"{CASES[family][1]}ForAudioClassification"
    id2label = classify.model.config.id2label

    # 4 s: one pass over the whole clip; a PretrainedSED head is multi-label (sigmoid) without a problem type
    result = classify(str(EXAMPLE_CLIP), top_k=3)
    assert len(result) == 3 and all(item["label"] in id2label.values() for item in result)
    assert [item["score"] for item in result] == sorted((item["score"] for item in result), reverse=True)
    clip, _ = soundfile.read(EXAMPLE_CLIP, dtype="float32")
    with torch.no_grad():
        logits = classify.model(**classify.feature_extractor(clip, sampling_rate=16000, return_tensors="pt")).logits
    expected = logits[0].sigmoid().topk(3)
    assert [item["label"] for item in result] == [id2label[index] for index in expected.indices.tolist()]
    np.testing.assert_allclose([item["score"] for item in result], expected.values.numpy(), rtol=1e-5, atol=1e-6)

    # 25 s at 32 kHz: resampled, three 10 s windows (the last one zero-padded), maximum window probability
    samples, rate = long_clip
    result = classify({"array": samples, "sampling_rate": rate}, top_k=5)
    waveform = resample(samples, rate, 16000) if rate != 16000 else samples
    windows, audio = split_windows(waveform, 160000)
    assert windows.shape == (3, 160000) and audio.tolist() == [160000, 160000, 80000]
    with torch.no_grad():
        window_logits = classify.model(**classify.feature_extractor(list(windows), sampling_rate=16000,
                                                                    return_tensors="pt")).logits
    expected = window_logits.sigmoid().amax(dim=0).topk(5)
    assert [item["label"] for item in result] == [id2label[index] for index in expected.indices.tolist()]
    np.testing.assert_allclose([item["score"] for item in result], expected.values.numpy(), rtol=1e-5, atol=1e-6)
    if family == "atst_frame":  # ATST-Frame refuses more than 10 s in one pass: only the windows make this work
        with pytest.raises(ValueError, match="at most"):
            classify.model(**classify.feature_extractor(waveform, sampling_rate=16000, return_tensors="pt"))


def test_window_aggregation_rules_and_batching(converted_dir, long_clip):
    logits = torch.tensor([[2.0, -1.0, 0.0], [-3.0, 1.0, 0.5], [0.0, 0.0, 4.0]])
    audio = torch.tensor([10.0, 10.0, 5.0])
    torch.testing.assert_close(aggregate_windows(logits, audio, "sigmoid"), logits.sigmoid().amax(dim=0))
    weights = torch.tensor([0.4, 0.4, 0.2])[:, None]
    torch.testing.assert_close(aggregate_windows(logits, audio, "softmax"), (logits.softmax(-1) * weights).sum(0))
    torch.testing.assert_close(aggregate_windows(logits, audio, "none"), (logits * weights).sum(0))

    classify = pipeline("audio-classification", model=str(converted_dir("sed_fpasst_tiny")), dtype=torch.float32)
    samples, rate = long_clip
    item = {"array": samples, "sampling_rate": rate}
    single = classify(item, top_k=4, function_to_apply="softmax")
    waveform = resample(samples, rate, 16000) if rate != 16000 else samples
    windows, audio = split_windows(waveform, 160000)
    with torch.no_grad():
        window_logits = classify.model(**classify.feature_extractor(list(windows), sampling_rate=16000,
                                                                    return_tensors="pt")).logits
    expected = ((window_logits.softmax(-1) * torch.tensor([0.4, 0.4, 0.2])[:, None]).sum(0)).topk(4)
    np.testing.assert_allclose([entry["score"] for entry in single], expected.values.numpy(), rtol=1e-5, atol=1e-7)
    # several files with batch_size: one file at a time, windows in batches; short and long clips mixed
    short = {"array": samples[: 3 * rate], "sampling_rate": rate}
    batched = classify([item, short], top_k=4, function_to_apply="softmax", batch_size=2)
    assert batched[1] == classify(short, top_k=4, function_to_apply="softmax")
    np.testing.assert_allclose([entry["score"] for entry in batched[0]], [entry["score"] for entry in single],
                               rtol=1e-5)



def test_pipeline_names_clip_classes_its_config_does_not_name():
    """A PretrainedSED head with more clip (weak) than frame classes: the config names the frame classes only."""
    torch.manual_seed(0)
    config, fe = _tiny("atst_frame", sed_head={"seq_len": 20, "window_seconds": 2.0, "num_weak_labels": 5})
    model = AutoModelForAudioClassification.from_config(config).eval()
    classify = pipeline("audio-classification", model=model, feature_extractor=fe, chunk_batch_size=1)
    result = classify(sweep_clip(300.0, 5.0, 1), top_k=10)  # 3 windows of 2 s
    assert sorted(item["label"] for item in result) == [f"LABEL_{index}" for index in range(5)]

def test_inputs_only_the_parent_decodes_are_windowed_too(converted_dir, long_clip, monkeypatch):
    """URLs and torchcodec decoders are decoded by transformers' pipeline; their samples are windowed as well."""
    classify = pipeline("audio-classification", model=str(converted_dir("sed_atstf_tiny")), dtype=torch.float32)
    samples, rate = long_clip
    waveform = resample(samples, rate, 16000) if rate != 16000 else samples
    expected = classify(waveform, top_k=3)
    monkeypatch.setattr(audio_classification, "_parent_handles", lambda audio: isinstance(audio, dict))
    assert classify({"array": waveform, "sampling_rate": 16000}, top_k=3) == expected
    assert classify.feature_extractor.__class__.__name__ == "AtstFrameFeatureExtractor"


def test_converted_sed_folder_loads_as_remote_clip_classifier_without_audiozoo(converted_dir, tmp_path):
    folder = converted_dir("sed_fpasst_tiny")
    script = HIDDEN_PACKAGE_SCRIPT.replace(
        "for auto in (AutoModel, AutoModelForAudioClassification, AutoModelForAudioFrameClassification):",
        "for auto in (AutoModelForAudioClassification, AutoModelForAudioFrameClassification):",
    ).replace("[type(model).__name__, model(**inputs)[0].tolist()]",
              "[type(model).__name__, model(**inputs)[0 if auto is AutoModelForAudioClassification else 1].tolist()]")
    environment = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "PYTHONPATH": ""}
    completed = subprocess.run([sys.executable, "-c", script, str(folder), str(EXAMPLE_CLIP)],
                               capture_output=True, text=True, env=environment, cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr[-3000:]
    remote = json.loads(completed.stdout.strip().splitlines()[-1])
    name, logits = remote["AutoModelForAudioClassification"]
    assert name == "FpasstForAudioClassification"
    # the clip classifier's logits are the frame classifier's clip logits, in the remote copy too
    assert remote["AutoModelForAudioFrameClassification"][1] == logits

    samples, rate = soundfile.read(EXAMPLE_CLIP, dtype="float32")
    fe = AutoFeatureExtractor.from_pretrained(folder)
    model = AutoModelForAudioClassification.from_pretrained(folder, dtype=torch.float32).eval()
    with torch.no_grad():
        local = model(**fe(samples[:rate], sampling_rate=rate)).logits
    torch.testing.assert_close(torch.tensor(logits), local, atol=0, rtol=0)


@pytest.mark.parametrize("task", ["single", "multi"])
def test_finetune_puts_a_pooled_clip_head_on_a_converted_sed_folder(converted_dir, tmp_path, task, one_thread):
    from audiozoo.training.finetune import FinetuneArgs, run_finetune

    rows = ["file,label,split"]
    for label, frequency in (("low", 220.0), ("high", 3000.0)):
        for index, split in enumerate(("train", "train", "valid", "test")):
            name = f"{label}_{index}.wav"
            soundfile.write(tmp_path / name, sweep_clip(frequency * (1 + 0.05 * index), 1.0, index), 16000)
            rows.append(f"{name},{label}{';both' if task == 'multi' and index % 2 else ''},{split}")
    (tmp_path / "data.csv").write_text("\n".join(rows) + "\n")
    family = "asit" if task == "single" else "frame_mn"
    folder = converted_dir(CASES[family][0])
    out = tmp_path / "out"
    result = run_finetune(FinetuneArgs(data=str(tmp_path / "data.csv"), model=str(folder), output_dir=str(out),
                                       task=task, clip_seconds=1.0, batch_size=2, max_steps=2, epochs=1, seed=0,
                                       cpu=True))
    best = out / "best"
    config = json.loads((best / "config.json").read_text())
    prefix = CASES[family][1]
    assert config["architectures"] == [f"{prefix}ForAudioClassification"] and config["sed_head"] is None
    assert config["problem_type"] == ("single_label_classification" if task == "single"
                                      else "multi_label_classification")
    model = AutoModelForAudioClassification.from_pretrained(best, dtype=torch.float32)
    assert hasattr(model, "classifier") and not hasattr(model, "sed_head")
    assert model.config.id2label == ({0: "high", 1: "low"} if task == "single" else {0: "both", 1: "high", 2: "low"})
    assert result.test  # the test split was scored with the new head
    top = pipeline("audio-classification", model=str(best), dtype=torch.float32)(str(tmp_path / "low_3.wav"))
    assert {item["label"] for item in top} == set(model.config.id2label.values())


def test_a_beats_sed_student_classifies_clips_with_its_own_head(converted_dir):
    """BEATs (SED head on the patch tokens): AutoModelForAudioClassification loads the converted student with the same
    weights, its logits are the frame model's clip logits, and the pipeline windows long clips; a BEATs folder
    without a SED head keeps its per-patch classifier and takes any length in one pass."""
    folder = converted_dir("sed_beats_tiny")
    clip, info = AutoModelForAudioClassification.from_pretrained(folder, dtype=torch.float32, output_loading_info=True)
    frame = AutoModelForAudioFrameClassification.from_pretrained(folder, dtype=torch.float32).eval()
    assert type(clip).__name__ == "BeatsForAudioClassification" and clip.uses_sed_head and not any(info.values())
    inputs = AutoFeatureExtractor.from_pretrained(folder)(_waveforms(), sampling_rate=16000, return_tensors="pt")
    with torch.no_grad():
        assert torch.equal(clip.eval()(**inputs).logits, frame(**inputs).clip_logits)
    assert clip.window_seconds == 10.0
    plain = AutoModelForAudioClassification.from_pretrained(converted_dir("beats_tiny_finetuned"), dtype=torch.float32)
    assert not plain.uses_sed_head and plain.window_seconds is None
