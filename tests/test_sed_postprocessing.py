"""SED post-processing: median filter, frame probabilities -> events, and the DESED-style event TSV."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import median_filter

from audiozoo.sed import (
    median_filter_probabilities,
    probabilities_to_events,
    read_events_tsv,
    write_events_tsv,
)

# Columns: a rising/falling class and a flickering class, 6 frames.
COLUMN = np.array([0.1, 0.9, 0.2, 0.8, 0.3])


def test_median_filter_matches_hand_computed_reflect_example():
    probabilities = np.stack([COLUMN, COLUMN], axis=1)
    # window 3, mode 'reflect' pads as x0 | x0..x4 | x4.
    expected = np.array([0.1, 0.2, 0.8, 0.3, 0.3])
    filtered = median_filter_probabilities(probabilities, 3)
    np.testing.assert_array_equal(filtered, np.stack([expected, expected], axis=1))
    assert filtered.dtype == probabilities.dtype
    np.testing.assert_array_equal(probabilities[:, 0], COLUMN)  # input left untouched


def test_median_filter_even_window_takes_scipys_upper_median():
    # size 2 covers frames (i-1, i); scipy's median of two values is the larger one (rank size // 2).
    filtered = median_filter_probabilities(COLUMN[:, None], 2)
    np.testing.assert_array_equal(filtered[:, 0], [0.1, 0.9, 0.9, 0.8, 0.8])


def test_median_filter_window_one_is_identity_copy():
    probabilities = np.stack([COLUMN, COLUMN[::-1]], axis=1)
    filtered = median_filter_probabilities(probabilities, 1)
    np.testing.assert_array_equal(filtered, probabilities)
    assert filtered is not probabilities


def test_median_filter_per_class_windows():
    probabilities = np.stack([COLUMN, COLUMN, COLUMN[::-1]], axis=1)
    filtered = median_filter_probabilities(probabilities, [3, 1, 3])
    np.testing.assert_array_equal(filtered[:, 0], [0.1, 0.2, 0.8, 0.3, 0.3])
    np.testing.assert_array_equal(filtered[:, 1], COLUMN)
    np.testing.assert_array_equal(filtered[:, 2], median_filter(COLUMN[::-1], size=3))


def test_median_filter_equals_pretrained_sed_call():
    probabilities = np.random.default_rng(0).random((50, 4)).astype(np.float32)
    np.testing.assert_array_equal(
        median_filter_probabilities(probabilities, 9), median_filter(probabilities, size=(9, 1))
    )
    per_class = median_filter_probabilities(probabilities, (9, 9, 9, 9))
    np.testing.assert_array_equal(per_class, median_filter(probabilities, size=(9, 1)))


@pytest.mark.parametrize(
    ("probabilities", "window", "message"),
    [
        (np.zeros(5), 3, "2-D array"),
        (np.zeros((2, 5, 3)), 3, "2-D array"),
        (np.zeros((5, 2)), 0, "integer >= 1"),
        (np.zeros((5, 2)), -3, "integer >= 1"),
        (np.zeros((5, 2)), 2.5, "integer >= 1"),
        (np.zeros((5, 2)), [3], "one window per class \\(C=2\\)"),
        (np.zeros((5, 2)), [3, 0], "window\\[1\\] must be an integer >= 1"),
    ],
)
def test_median_filter_rejects_bad_input(probabilities, window, message):
    with pytest.raises(ValueError, match=message):
        median_filter_probabilities(probabilities, window)


# frame:  0     1     2     3     4     5   (frame_duration 0.5 s)
PROBS = np.array(
    [
        [0.1, 0.6],
        [0.7, 0.6],
        [0.9, 0.2],
        [0.2, 0.55],
        [0.6, 0.3],
        [0.8, 0.7],
    ]
)


def _event(label, onset, offset, score):
    return {"label": label, "onset": onset, "offset": offset, "score": score}


def test_events_from_probabilities():
    events = probabilities_to_events(PROBS, ["a", "b"], 0.5)
    assert events == [
        _event("b", 0.0, 1.0, 0.6),
        _event("a", 0.5, 1.5, 0.9),
        _event("b", 1.5, 2.0, 0.55),
        _event("a", 2.0, 3.0, 0.8),
        _event("b", 2.5, 3.0, 0.7),
    ]
    assert all(type(event["score"]) is float for event in events)


def test_events_per_class_threshold_and_label_tie_order():
    events = probabilities_to_events(PROBS, ["a", "b"], 0.5, threshold=[0.75, 0.58])
    assert events == [
        _event("b", 0.0, 1.0, 0.6),
        _event("a", 1.0, 1.5, 0.9),
        _event("a", 2.5, 3.0, 0.8),
        _event("b", 2.5, 3.0, 0.7),
    ]


def test_events_need_probability_strictly_above_threshold():
    events = probabilities_to_events(PROBS, ["a", "b"], 0.5, threshold=[1.0, 0.6])
    assert events == [_event("b", 2.5, 3.0, 0.7)]
    assert probabilities_to_events(np.zeros((4, 2)), ["a", "b"], 0.5) == []


def test_events_clipped_to_duration():
    events = probabilities_to_events(PROBS, ["a", "b"], 0.5, duration=2.7)
    assert events[-2:] == [_event("a", 2.0, 2.7, 0.8), _event("b", 2.5, 2.7, 0.7)]
    # An event starting exactly at the duration is dropped.
    events = probabilities_to_events(PROBS, ["a", "b"], 0.5, duration=2.5)
    assert events[-1] == _event("a", 2.0, 2.5, 0.8)
    assert len(events) == 4


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"probabilities": PROBS[:, 0]}, "2-D array"),
        ({"labels": ["a"]}, "one name per class \\(C=2\\), got 1"),
        ({"labels": ["a", "a"]}, "distinct"),
        ({"threshold": [0.5, 0.5, 0.5]}, "one threshold per class \\(C=2\\)"),
        ({"frame_duration": 0.0}, "frame_duration must be a positive"),
        ({"duration": -1.0}, "duration must be None or a positive"),
    ],
)
def test_events_reject_bad_input(kwargs, message):
    arguments = {"probabilities": PROBS, "labels": ["a", "b"], "frame_duration": 0.5, **kwargs}
    with pytest.raises(ValueError, match=message):
        probabilities_to_events(**arguments)


def test_tsv_exact_text_and_round_trip(tmp_path):
    path = tmp_path / "events.tsv"
    events_by_file = {
        "clip1.wav": [_event("Speech", 0.0, 1.0 / 3.0, 0.9), _event("Dog", 1.25, 2.5, 0.7)],
        "silent.wav": [],
        "clip2.wav": [{"label": "Alarm_bell_ringing", "onset": 2.0004, "offset": 9.9996}],
    }
    write_events_tsv(path, events_by_file)
    assert path.read_text(encoding="utf-8") == (
        "filename\tonset\toffset\tevent_label\n"
        "clip1.wav\t0.000\t0.333\tSpeech\n"
        "clip1.wav\t1.250\t2.500\tDog\n"
        "clip2.wav\t2.000\t10.000\tAlarm_bell_ringing\n"
    )
    assert read_events_tsv(path) == {
        "clip1.wav": [
            {"label": "Speech", "onset": 0.0, "offset": 0.333},
            {"label": "Dog", "onset": 1.25, "offset": 2.5},
        ],
        "clip2.wav": [{"label": "Alarm_bell_ringing", "onset": 2.0, "offset": 10.0}],
    }


def test_tsv_header_only_when_no_events(tmp_path):
    path = tmp_path / "empty.tsv"
    write_events_tsv(path, {"a.wav": [], "b.wav": []})
    assert path.read_text(encoding="utf-8") == "filename\tonset\toffset\tevent_label\n"
    assert read_events_tsv(path) == {}


def test_read_tsv_desed_empty_rows_and_column_order(tmp_path):
    path = tmp_path / "desed.tsv"
    path.write_text(
        "event_label\tfilename\toffset\tonset\n"
        "Cat\ta.wav\t2.5\t1.0\n"
        "\tb.wav\t\t\n"
        "\n",
        encoding="utf-8",
    )
    assert read_events_tsv(path) == {"a.wav": [{"label": "Cat", "onset": 1.0, "offset": 2.5}], "b.wav": []}


def test_tsv_errors(tmp_path):
    bad_header = tmp_path / "bad_header.tsv"
    bad_header.write_text("filename\tstart\tend\tlabel\n", encoding="utf-8")
    with pytest.raises(ValueError, match="missing \\['onset', 'offset', 'event_label'\\]"):
        read_events_tsv(bad_header)
    bad_number = tmp_path / "bad_number.tsv"
    bad_number.write_text("filename\tonset\toffset\tevent_label\na.wav\tx\t1.0\tDog\n", encoding="utf-8")
    with pytest.raises(ValueError, match="bad_number.tsv:2: onset and offset must be numbers"):
        read_events_tsv(bad_number)
    with pytest.raises(ValueError, match="must not contain tabs"):
        write_events_tsv(tmp_path / "out.tsv", {"a.wav": [{"label": "Dog\tBark", "onset": 0, "offset": 1}]})
    with pytest.raises(ValueError, match="must be a dict with 'label', 'onset' and 'offset'"):
        write_events_tsv(tmp_path / "out.tsv", {"a.wav": [{"label": "Dog", "onset": 0}]})
