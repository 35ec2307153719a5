"""SED metrics (PSDS1, event- and segment-based F1) on known predictions, with values worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from audiozoo.sed import (
    event_based_f1,
    probabilities_to_events,
    psds1,
    read_events_tsv,
    segment_based_f1,
    write_events_tsv,
)

FRAME = 0.5  # seconds per frame
LABELS = ["dog", "cat"]
# Two 10 s clips (20 frames each); every event lies on frame boundaries.
GROUND_TRUTH = {
    "a.wav": [(1.0, 3.0, "dog"), (5.0, 6.0, "cat")],
    "b.wav": [(0.0, 2.0, "cat"), (6.0, 8.0, "dog")],
}
DURATIONS = {"a.wav": 10.0, "b.wav": 10.0}


def _probabilities(events, num_frames=20, labels=LABELS):
    """Probability 1 inside the given events, 0 elsewhere."""
    probabilities = np.zeros((num_frames, len(labels)))
    for onset, offset, label in events:
        probabilities[round(onset / FRAME) : round(offset / FRAME), labels.index(label)] = 1.0
    return probabilities


def _perfect():
    return {filename: _probabilities(events) for filename, events in GROUND_TRUTH.items()}


def test_perfect_prediction_scores_one_everywhere():
    scores = _perfect()
    psds = psds1(scores, FRAME, LABELS, GROUND_TRUTH, DURATIONS)
    assert psds["psds"] == pytest.approx(1.0, abs=1e-12)
    assert psds["per_class"] == pytest.approx({"dog": 1.0, "cat": 1.0}, abs=1e-12)
    assert psds["ignored_labels"] == []

    event = event_based_f1(scores, FRAME, LABELS, GROUND_TRUTH)
    assert event["macro_f1"] == 1.0 and event["micro_f1"] == 1.0
    assert event["per_class"]["dog"] == {"f1": 1.0, "precision": 1.0, "recall": 1.0, "tp": 2, "fp": 0, "n_ref": 2}

    segment = segment_based_f1(scores, FRAME, LABELS, GROUND_TRUTH, DURATIONS)
    assert segment["macro_f1"] == 1.0
    # 1 s segments: dog covers 2 + 2 segments, cat 1 + 2.
    assert segment["per_class"]["dog"]["n_ref"] == 4
    assert segment["per_class"]["cat"]["n_ref"] == 3


def test_missing_one_of_two_classes_gives_macro_half():
    scores = _perfect()
    for probabilities in scores.values():
        probabilities[:, LABELS.index("cat")] = 0.0
    event = event_based_f1(scores, FRAME, LABELS, GROUND_TRUTH)
    assert event["macro_f1"] == pytest.approx(0.5)
    assert event["per_class"]["cat"]["f1"] == 0.0 and event["per_class"]["dog"]["f1"] == 1.0
    segment = segment_based_f1(scores, FRAME, LABELS, GROUND_TRUTH, DURATIONS)
    assert segment["macro_f1"] == pytest.approx(0.5)
    # PSDS1 = mean - 1 * std over classes of the TPR curves: (1 + 0) / 2 - 0.5 = 0.
    psds = psds1(scores, FRAME, LABELS, GROUND_TRUTH, DURATIONS)
    assert psds["per_class"] == pytest.approx({"dog": 1.0, "cat": 0.0}, abs=1e-12)
    assert psds["psds"] == pytest.approx(0.0, abs=1e-12)


def test_one_of_two_events_detected():
    scores = _perfect()
    scores["b.wav"][:, LABELS.index("dog")] = 0.0  # miss the dog in b.wav
    event = event_based_f1(scores, FRAME, LABELS, GROUND_TRUTH)
    dog = event["per_class"]["dog"]
    assert (dog["tp"], dog["fp"], dog["n_ref"]) == (1, 0, 2)
    assert dog["precision"] == 1.0 and dog["recall"] == 0.5
    assert dog["f1"] == pytest.approx(2 / 3)
    assert event["macro_f1"] == pytest.approx((2 / 3 + 1) / 2)
    # micro: tp 3, fp 0, n_ref 4 -> P 1, R 3/4, F 6/7.
    assert event["micro_f1"] == pytest.approx(6 / 7)
    segment = segment_based_f1(scores, FRAME, LABELS, GROUND_TRUTH, DURATIONS)
    assert segment["per_class"]["dog"]["tp"] == 2
    assert segment["per_class"]["dog"]["f1"] == pytest.approx(2 / 3)


def test_onset_collar_and_false_positive():
    scores = _perfect()
    dog = LABELS.index("dog")
    scores["a.wav"][:, dog] = _probabilities([(1.5, 3.0, "dog")])[:, dog]  # onset 0.5 s late
    scores["b.wav"][18:20, dog] = 1.0  # a false dog at 9.0-10.0 s, apart from the true one at 6.0-8.0 s
    strict = event_based_f1(scores, FRAME, LABELS, GROUND_TRUTH)["per_class"]["dog"]
    # late onset misses the 0.2 s collar: detections (1.5-3), (6-8), (9-10) -> tp 1, fp 2.
    assert (strict["tp"], strict["fp"]) == (1, 2)
    assert strict["f1"] == pytest.approx(2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2))
    loose = event_based_f1(scores, FRAME, LABELS, GROUND_TRUTH, onset_collar=0.5)["per_class"]["dog"]
    assert (loose["tp"], loose["fp"]) == (2, 1)
    assert loose["f1"] == pytest.approx(0.8)


def test_threshold_is_strict_and_per_class():
    half = {filename: probabilities * 0.5 for filename, probabilities in _perfect().items()}
    assert event_based_f1(half, FRAME, LABELS, GROUND_TRUTH, threshold=0.5)["macro_f1"] == 0.0
    assert event_based_f1(half, FRAME, LABELS, GROUND_TRUTH, threshold=0.49)["macro_f1"] == 1.0
    mixed = event_based_f1(half, FRAME, LABELS, GROUND_TRUTH, threshold=[0.49, 0.5])
    assert mixed["per_class"]["dog"]["f1"] == 1.0 and mixed["per_class"]["cat"]["f1"] == 0.0
    segment = segment_based_f1(half, FRAME, LABELS, GROUND_TRUTH, DURATIONS, threshold=[0.49, 0.5])
    assert segment["per_class"]["dog"]["f1"] == 1.0 and segment["per_class"]["cat"]["f1"] == 0.0


def test_frames_past_the_duration_are_dropped():
    # 24 frames (12 s) for 10 s clips; a dog only in the padding must not count with durations given.
    scores = {filename: _probabilities(events, num_frames=24) for filename, events in GROUND_TRUTH.items()}
    scores["a.wav"][21:23, LABELS.index("dog")] = 1.0
    clipped = event_based_f1(scores, FRAME, LABELS, GROUND_TRUTH, durations=DURATIONS)
    assert clipped["per_class"]["dog"]["fp"] == 0 and clipped["macro_f1"] == 1.0
    unclipped = event_based_f1(scores, FRAME, LABELS, GROUND_TRUTH)
    assert unclipped["per_class"]["dog"]["fp"] == 1
    assert psds1(scores, FRAME, LABELS, GROUND_TRUTH, DURATIONS)["psds"] == pytest.approx(1.0, abs=1e-12)
    assert segment_based_f1(scores, FRAME, LABELS, GROUND_TRUTH, DURATIONS)["macro_f1"] == 1.0


def test_files_without_ground_truth_and_classes_without_events():
    labels = [*LABELS, "bird"]
    scores = {filename: _probabilities(events, labels=labels) for filename, events in GROUND_TRUTH.items()}
    scores["c.wav"] = _probabilities([(2.0, 3.0, "dog"), (4.0, 5.0, "bird")], labels=labels)
    result = event_based_f1(scores, FRAME, labels, GROUND_TRUTH)
    assert result["ignored_labels"] == ["bird"]
    assert set(result["per_class"]) == {"dog", "cat"}
    assert (result["per_class"]["dog"]["tp"], result["per_class"]["dog"]["fp"]) == (2, 1)
    durations = {**DURATIONS, "c.wav": 10.0}
    assert psds1(scores, FRAME, labels, GROUND_TRUTH, durations)["ignored_labels"] == ["bird"]


def test_events_and_tsv_feed_the_evaluation(tmp_path):
    scores = _perfect()
    predicted = {
        filename: probabilities_to_events(probabilities, LABELS, FRAME, duration=DURATIONS[filename])
        for filename, probabilities in scores.items()
    }
    assert [(e["onset"], e["offset"], e["label"]) for e in predicted["a.wav"]] == GROUND_TRUTH["a.wav"]
    path = tmp_path / "ground_truth.tsv"
    write_events_tsv(path, {filename: [dict(zip(("onset", "offset", "label"), e)) for e in events]
                            for filename, events in GROUND_TRUTH.items()})
    from_tsv = read_events_tsv(path)  # dict events are accepted as ground truth
    assert event_based_f1(scores, FRAME, LABELS, from_tsv)["macro_f1"] == 1.0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"ground_truth": {**GROUND_TRUTH, "x.wav": [(0.0, 1.0, "dog")]}}, "files without scores: \\['x.wav'\\]"),
        ({"ground_truth": {"a.wav": [(0.0, 1.0, "cow")]}}, "unknown label 'cow'"),
        ({"labels": ["dog", "cat", "bird"]}, "C = len\\(labels\\) = 3, got shape \\(20, 2\\)"),
        ({"ground_truth": {"a.wav": [(0.0, 1.0, "dog"), (1.0, 2.0, "dog")]}}, "overlapping or touching 'dog'"),
        ({"ground_truth": {"a.wav": [(2.0, 1.0, "dog")]}}, "0 <= onset < offset"),
        ({"ground_truth": {"a.wav": [(0.0, 1.0)]}}, "must be \\(onset, offset, label\\)"),
        ({"ground_truth": {"a.wav": []}}, "no events at all"),
        ({"labels": ["onset", "cat"]}, "reserved"),
        ({"frame_duration": 0}, "frame_duration must be a positive"),
        ({"scores": {}}, "non-empty mapping"),
    ],
)
def test_bad_input_errors(change, message):
    arguments = {
        "scores": _perfect(),
        "frame_duration": FRAME,
        "labels": LABELS,
        "ground_truth": GROUND_TRUTH,
        **change,
    }
    with pytest.raises(ValueError, match=message):
        event_based_f1(**arguments)


def test_bad_durations_and_thresholds():
    scores = _perfect()
    with pytest.raises(ValueError, match="durations has no entry for the scored files \\['b.wav'\\]"):
        psds1(scores, FRAME, LABELS, GROUND_TRUTH, {"a.wav": 10.0})
    with pytest.raises(ValueError, match="psds1 needs durations"):
        psds1(scores, FRAME, LABELS, GROUND_TRUTH, None)
    with pytest.raises(ValueError, match="positive number of seconds"):
        segment_based_f1(scores, FRAME, LABELS, GROUND_TRUTH, {"a.wav": 10.0, "b.wav": 0.0})
    with pytest.raises(ValueError, match="one threshold per label \\(C=2\\), got 3"):
        event_based_f1(scores, FRAME, LABELS, GROUND_TRUTH, threshold=[0.5, 0.5, 0.5])
    with pytest.raises(ValueError, match="onset_collar must be"):
        event_based_f1(scores, FRAME, LABELS, GROUND_TRUTH, onset_collar=-1)
