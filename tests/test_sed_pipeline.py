"""pipeline("sound-event-detection") and `audiozoo detect`: chunking, batching, post-processing, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile
import torch
from scipy.ndimage import median_filter
from transformers import AutoFeatureExtractor, AutoModelForAudioFrameClassification, pipeline

from audiozoo.audio.io import load_audio
from audiozoo.cli import main
from audiozoo.sed.postprocessing import probabilities_to_events, read_events_tsv
from conftest import REPO

SHARED_AUDIO = REPO / "tests" / "fixtures" / "audio"


@pytest.fixture(scope="module")
def long_recording(tmp_path_factory) -> tuple[np.ndarray, str]:
    """23.5 s at 16 kHz made of the two real clips (three 10 s windows, the last one mostly padding)."""
    clip_a, _ = load_audio(REPO / "examples" / "audio" / "clip_a_16k_4s.wav", sampling_rate=16000)
    rng = np.random.default_rng(0)
    pieces = [clip_a, 0.3 * clip_a[::-1].copy(), clip_a, 0.05 * rng.standard_normal(16000 * 4).astype(np.float32)]
    waveform = np.concatenate(pieces * 2)[: int(23.5 * 16000)]
    path = tmp_path_factory.mktemp("sed") / "long_16k.wav"
    soundfile.write(path, waveform, 16000, subtype="FLOAT")
    return waveform, str(path)


def _detector(converted_dir, name="sed_atstf_tiny"):
    return pipeline("sound-event-detection", model=str(converted_dir(name)), dtype=torch.float32)


def test_pipeline_matches_window_by_window_reference(converted_dir, long_recording):
    """The original inference: 10 s windows one at a time (last zero-padded), concatenated, trimmed, median 9."""
    waveform, _ = long_recording
    folder = converted_dir("sed_atstf_tiny")
    model = AutoModelForAudioFrameClassification.from_pretrained(folder).eval()
    feature_extractor = AutoFeatureExtractor.from_pretrained(folder)
    window = 160000
    padded = np.zeros(3 * window, dtype=np.float32)
    padded[: waveform.size] = waveform
    with torch.no_grad():
        chunks = [model(**feature_extractor(padded[i * window:(i + 1) * window], sampling_rate=16000)).probabilities[0]
                  for i in range(3)]
    reference = torch.cat(chunks).numpy()[: math.ceil(23.5 * 25)]
    reference = median_filter(reference, size=(9, 1))
    labels = [model.config.id2label[i] for i in range(reference.shape[1])]
    expected_events = probabilities_to_events(reference, labels, 0.04, 0.5, 23.5)

    result = _detector(converted_dir)(waveform, sampling_rate=16000, return_frame_probabilities=True)
    assert result["frame_probabilities"].shape == (588, 447) and result["frame_rate"] == 25.0
    np.testing.assert_allclose(result["frame_probabilities"], reference, atol=1e-5)
    assert len(result["events"]) == len(expected_events) > 0
    for got, expected in zip(result["events"], expected_events, strict=True):
        assert got["label"] == expected["label"]
        assert got["onset"] == pytest.approx(expected["onset"]) and got["offset"] == pytest.approx(expected["offset"])
        assert got["score"] == pytest.approx(expected["score"], abs=1e-5)
    assert max(event["offset"] for event in result["events"]) <= 23.5


def test_batching_windows_does_not_change_events(converted_dir, long_recording):
    detector = _detector(converted_dir)
    _, path = long_recording
    one = detector(path, chunk_batch_size=1, return_frame_probabilities=True)
    many = detector(path, chunk_batch_size=3, return_frame_probabilities=True)
    np.testing.assert_allclose(one["frame_probabilities"], many["frame_probabilities"], atol=1e-5)
    assert [e["label"] for e in one["events"]] == [e["label"] for e in many["events"]]


def test_files_are_resampled_and_several_thresholds_grouped(converted_dir, tmp_path, long_recording):
    detector = _detector(converted_dir)
    waveform, path = long_recording
    stereo_44k = tmp_path / "stereo_44k.wav"
    import soxr

    resampled = soxr.resample(waveform, 16000, 44100)
    soundfile.write(stereo_44k, np.stack([resampled, resampled], axis=1), 44100, subtype="PCM_16")
    by_threshold = detector(str(stereo_44k), thresholds=[0.3, 0.7], return_frame_probabilities=True)
    assert sorted(by_threshold["events_by_threshold"]) == [0.3, 0.7]
    assert all(event["score"] > 0.7 for event in by_threshold["events_by_threshold"][0.7])
    # 44.1 kHz stereo int16 file -> decoded, down-mixed, resampled: nearly the 16 kHz float result
    direct = detector(path, return_frame_probabilities=True)["frame_probabilities"]
    assert np.abs(by_threshold["frame_probabilities"] - direct).max() < 0.05
    per_class = [0.99] * 447
    per_class[0] = 0.0  # every frame of class 0 is above its threshold: one event over the whole recording
    events = detector(path, threshold=per_class, median_window=1)
    first = [e for e in events if e["label"] == detector.model.config.id2label[0]]
    assert len(first) == 1 and first[0]["onset"] == 0.0 and first[0]["offset"] == pytest.approx(23.5)


def test_bad_input_is_refused(converted_dir, tmp_path):
    detector = _detector(converted_dir)
    with pytest.raises(ValueError, match="empty"):
        detector(np.zeros(0, dtype=np.float32), sampling_rate=16000)
    with pytest.raises(ValueError, match="NaN"):
        detector(np.full(16000, np.nan, dtype=np.float32), sampling_rate=16000)
    with pytest.raises(ValueError, match="threshold"):
        detector(np.zeros(16000, dtype=np.float32), sampling_rate=16000, threshold=[0.5] * 449)
    with pytest.raises(ValueError, match="not both"):
        detector(np.zeros(16000, dtype=np.float32), sampling_rate=16000, threshold=0.5, thresholds=[0.2])
    with pytest.raises(ValueError, match="window"):
        detector(np.zeros(16000, dtype=np.float32), sampling_rate=16000, median_window=0)
    with pytest.raises(ValueError, match="PretrainedSED prediction head"):
        pipeline("sound-event-detection", model=str(converted_dir("beats_tiny_finetuned")))


def test_detect_cli_prints_events_and_writes_tsv_and_plot(converted_dir, long_recording, tmp_path, capsys):
    _, path = long_recording
    tsv, png = tmp_path / "events.tsv", tmp_path / "events.png"
    folder = str(converted_dir("sed_frame_mn06"))
    assert main(["detect", path, "--model", folder, "--threshold", "0.7", "--tsv", str(tsv), "--plot", str(png)]) == 0
    printed = capsys.readouterr().out
    events = read_events_tsv(tsv)["long_16k.wav"]
    assert events and f"{events[0]['onset']:8.2f}" in printed
    assert tsv.read_text().splitlines()[0] == "filename\tonset\toffset\tevent_label"
    assert png.stat().st_size > 20000 and png.read_bytes()[:4] == b"\x89PNG"
    label = events[0]["label"]
    assert main(["detect", path, "--model", folder, "--threshold", f"{label}=0.0", "--json"]) == 0
    assert '"label": "%s"' % label in capsys.readouterr().out
    # an unknown class name is a usage error (exit status 2, one line), no longer a traceback
    assert main(["detect", path, "--model", folder, "--threshold", "No such class=0.2"]) == 2
    assert "the model has no class 'No such class'" in capsys.readouterr().err


def test_plot_panels_share_one_time_axis_and_say_what_was_left_out(long_recording, tmp_path, monkeypatch):
    """The spectrogram and the event roll span the same width in the figure and the same seconds (colour bars in a
    column of their own); with more classes than rows, the figure says how many were left out and why."""
    from matplotlib.figure import Figure

    from audiozoo.sed.plot import plot_events

    saved = []
    save = Figure.savefig

    def keep(figure, *args, **kwargs):
        saved.append(figure)
        return save(figure, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    waveform, _ = long_recording
    duration = waveform.size / 16000
    rng = np.random.default_rng(0)
    events = [{"label": f"class {index}", "onset": onset, "offset": min(duration, onset + 2.0), "score": score}
              for index, (onset, score) in enumerate(zip(rng.uniform(0, duration - 1, 30), rng.uniform(0.5, 1, 30)))]
    events.append({"label": "to the end", "onset": duration - 1.0, "offset": duration, "score": 0.4})
    png = plot_events(waveform, 16000, events, tmp_path / "roll.png", max_rows=25)
    assert png.read_bytes()[:4] == b"\x89PNG" and len(saved) == 1

    axes = saved[0].axes
    top = next(ax for ax in axes if ax.get_ylabel() == "mel bin")
    bottom = next(ax for ax in axes if ax.get_xlabel() == "time (s)")
    top_box, bottom_box = top.get_position(), bottom.get_position()
    assert top_box.x0 == pytest.approx(bottom_box.x0, abs=1e-9)
    assert top_box.x1 == pytest.approx(bottom_box.x1, abs=1e-9)
    assert top.get_xlim() == pytest.approx((0.0, duration)) and bottom.get_xlim() == pytest.approx((0.0, duration))
    left, right, _, _ = top.images[0].get_extent()  # the spectrogram covers the whole recording, centred frames
    assert left <= 0.0 and duration <= right <= duration + 0.01
    note = bottom.get_title(loc="left")
    assert "25 of 31 classes" in note and "6 left out" in note and "highest event score" in note
    rows = [label.get_text() for label in bottom.get_yticklabels()]
    assert len(rows) == 25 and "to the end" not in rows  # its score, 0.4, is the lowest
