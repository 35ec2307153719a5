"""Sound-event-detection metrics on frame probabilities, computed with `sed_scores_eval` (Ebbers et al., ICASSP 2022).

The functions take what a model gives (per-file frame probabilities [T, C] at a fixed frame duration) and the
ground truth as `(onset, offset, label)` events, build sed_scores_eval score DataFrames, and return plain dicts:

- `psds1`: PSDS scenario 1 of DCASE Task 4 (dtc 0.7, gtc 0.7, no cross-trigger penalty, alpha_st 1, eFPR up to
  100 per hour). Threshold-independent: the whole score range is swept.
- `event_based_f1`: collar-based (event-based) F1 at one decision threshold (onset collar 200 ms, offset collar
  max(200 ms, 20 % of the event length) by default, as DCASE).
- `segment_based_f1`: segment-based F1 at one decision threshold on 1 s segments.

A frame counts as active when its probability is strictly greater than the threshold, as in
`probabilities_to_events`. sed_scores_eval cannot score a class without any ground-truth event (recall is
undefined); such classes are left out of every average and listed under `ignored_labels`.
sed_scores_eval and pandas are imported on first use: they come with the `sed` extra
(`pip install "audiozoo[sed]"`), not with the base install, and sed_scores_eval pulls in sed_eval and dcase_util,
which are slow to import. `require_sed_metrics()` checks for them up front (training calls it before a run).
"""

from __future__ import annotations

import functools
import itertools
import math
import warnings
from collections.abc import Mapping, Sequence
from numbers import Real
from types import ModuleType
from typing import Any

import numpy as np

__all__ = [
    "PSDS1_SETTINGS",
    "SED_EXTRA_INSTALL",
    "event_based_f1",
    "psds1",
    "require_sed_metrics",
    "segment_based_f1",
]

# DCASE Task 4 PSDS scenario 1.
PSDS1_SETTINGS = {
    "dtc_threshold": 0.7,
    "gtc_threshold": 0.7,
    "cttc_threshold": None,
    "alpha_ct": 0.0,
    "alpha_st": 1.0,
    "max_efpr": 100.0,
}
# Column names that sed_scores_eval's score DataFrames use for the frame times.
_RESERVED_LABELS = ("onset", "offset")

GroundTruth = Mapping[str, Sequence[Any]]


SED_EXTRA_INSTALL = 'pip install "audiozoo[sed]"'


def _sed_scores_eval() -> ModuleType:
    """Import sed_scores_eval (and pandas, which its score tables are) on first use, hiding dcase_util's
    pkg_resources deprecation warning; a missing module is an ImportError that names the `sed` extra."""
    try:
        import pandas  # noqa: F401  (checked on its own: an already imported sed_scores_eval would not re-import it)

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*pkg_resources.*")
            import sed_scores_eval
            import sed_scores_eval.base_modules.scores
            import sed_scores_eval.collar_based
            import sed_scores_eval.intersection_based
            import sed_scores_eval.segment_based
    except ImportError as error:
        missing = error.name or str(error)
        hint = ""
        if missing.split(".")[0] == "pkg_resources":
            hint = (" (dcase_util, which sed_scores_eval imports through sed_eval, needs pkg_resources, which "
                    "setuptools dropped in version 82; the extra pins setuptools<82)")
        raise ImportError(
            f"the SED metrics (PSDS1, event- and segment-based F1) need sed_scores_eval and pandas, which are not "
            f"part of the base install: {SED_EXTRA_INSTALL}. Missing module: {missing}{hint}."
        ) from error
    return sed_scores_eval


def require_sed_metrics() -> None:
    """Raise the ImportError naming `pip install "audiozoo[sed]"` now if the SED metrics cannot run.

    Training loops that validate with PSDS1 call this before they build anything, so a missing extra fails at the
    start of a run instead of after the first epoch."""
    _sed_scores_eval()


@functools.cache
def _writable_frame_type() -> type:
    """A pandas DataFrame whose `to_numpy()` is always writable.

    sed_scores_eval 0.0.4 hands `df[classes].to_numpy()` to a Cython function that needs a writable buffer; under
    pandas 3 copy-on-write that array is a read-only view ("buffer source array is read-only"). Copying only when
    the array is read-only keeps the library working on pandas 2 and 3 alike.
    """
    import pandas as pd

    class WritableScoreFrame(pd.DataFrame):
        @property
        def _constructor(self) -> type:
            return WritableScoreFrame

        def to_numpy(self, *args: Any, **kwargs: Any) -> np.ndarray:
            array = super().to_numpy(*args, **kwargs)
            return array if array.flags.writeable else array.copy()

    return WritableScoreFrame


def _check_labels(labels: Sequence[str]) -> list[str]:
    """Validate the class names: distinct non-empty strings that sed_scores_eval can use as DataFrame columns."""
    if isinstance(labels, str):
        raise ValueError("labels must be a sequence of class names, not a single string")
    names = list(labels)
    if not names:
        raise ValueError("labels must name at least one class")
    for name in names:
        if not isinstance(name, str) or not name:
            raise ValueError(f"labels must be non-empty strings, got {name!r}")
        if name in _RESERVED_LABELS or "\\" in name:
            raise ValueError(f"label {name!r} cannot be scored: 'onset', 'offset' and backslashes are reserved")
    if len(set(names)) != len(names):
        duplicates = sorted({name for name in names if names.count(name) > 1})
        raise ValueError(f"labels must be distinct, got duplicates {duplicates}")
    return names


def _check_positive(value: object, what: str) -> float:
    """Return `value` as a float if it is a finite positive number, else raise a ValueError naming `what`."""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) or not value > 0:
        raise ValueError(f"{what} must be a positive number of seconds, got {value!r}")
    return float(value)


def _event_tuple(event: Any, filename: str, index: int) -> tuple[float, float, str]:
    """Read one ground-truth event given as (onset, offset, label) or as a dict with onset/offset/label."""
    try:
        if isinstance(event, Mapping):
            label = event["label"] if "label" in event else event["event_label"]
            onset, offset = event["onset"], event["offset"]
        else:
            onset, offset, label = event
        onset, offset = float(onset), float(offset)
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(
            f"ground_truth[{filename!r}][{index}] must be (onset, offset, label) or a dict with "
            f"'onset', 'offset' and 'label', got {event!r}"
        ) from error
    if not (math.isfinite(onset) and math.isfinite(offset)) or onset < 0 or offset <= onset:
        raise ValueError(
            f"ground_truth[{filename!r}][{index}] needs 0 <= onset < offset, got onset {onset} and offset {offset}"
        )
    return onset, offset, label


def _check_ground_truth(
    ground_truth: GroundTruth, filenames: Sequence[str], labels: list[str]
) -> dict[str, list[tuple[float, float, str]]]:
    """Validate the reference events and return them for every scored file (files absent from it have none)."""
    if not isinstance(ground_truth, Mapping):
        raise ValueError(f"ground_truth must map filenames to lists of events, got {type(ground_truth).__name__}")
    known = set(labels)
    unscored = sorted(set(ground_truth) - set(filenames))
    if unscored:
        more = " ..." if len(unscored) > 10 else ""
        raise ValueError(f"ground_truth has files without scores: {unscored[:10]}{more}")
    checked: dict[str, list[tuple[float, float, str]]] = {}
    for filename in filenames:
        events = [_event_tuple(event, filename, index) for index, event in enumerate(ground_truth.get(filename, ()))]
        for index, (_, _, label) in enumerate(events):
            if label not in known:
                raise ValueError(
                    f"ground_truth[{filename!r}][{index}] has the unknown label {label!r}; labels are {labels}"
                )
        # sed_scores_eval asserts that events of one class neither overlap nor touch; say so clearly instead.
        for label in {event[2] for event in events}:
            spans = sorted((onset, offset) for onset, offset, name in events if name == label)
            for (_, previous_offset), (onset, _) in itertools.pairwise(spans):
                if onset <= previous_offset:
                    raise ValueError(
                        f"ground_truth[{filename!r}] has overlapping or touching {label!r} events "
                        f"({spans}); merge them first"
                    )
        checked[filename] = events
    return checked


def _prepare(
    scores: Mapping[str, np.ndarray],
    frame_duration: float,
    labels: Sequence[str],
    ground_truth: GroundTruth,
    durations: Mapping[str, float] | None,
) -> tuple[dict[str, Any], dict[str, list[tuple[float, float, str]]], dict[str, float] | None, list[str], list[str]]:
    """Validate the inputs and build the sed_scores_eval inputs restricted to classes that have ground truth.

    Returns (score DataFrames, ground truth, durations, evaluated labels, ignored labels).
    """
    names = _check_labels(labels)
    step = _check_positive(frame_duration, "frame_duration")
    if not isinstance(scores, Mapping) or not scores:
        raise ValueError("scores must be a non-empty mapping from filename to a [T, C] probability array")
    filenames = list(scores)
    arrays: dict[str, np.ndarray] = {}
    for filename in filenames:
        array = np.asarray(scores[filename], dtype=np.float64)
        if array.ndim != 2 or array.shape[1] != len(names) or array.shape[0] == 0:
            raise ValueError(
                f"scores[{filename!r}] must be a [T, C] array with T >= 1 and C = len(labels) = {len(names)}, "
                f"got shape {array.shape}"
            )
        if not np.isfinite(array).all():
            raise ValueError(f"scores[{filename!r}] contains NaN or infinite values")
        arrays[filename] = array
    checked_durations: dict[str, float] | None = None
    if durations is not None:
        missing = [filename for filename in filenames if filename not in durations]
        if missing:
            raise ValueError(f"durations has no entry for the scored files {missing[:10]}")
        checked_durations = {
            filename: _check_positive(durations[filename], f"durations[{filename!r}]") for filename in filenames
        }
    reference = _check_ground_truth(ground_truth, filenames, names)

    with_events = {event[2] for events in reference.values() for event in events}
    evaluated = [name for name in names if name in with_events]
    ignored = [name for name in names if name not in with_events]
    if not evaluated:
        raise ValueError("ground_truth has no events at all: no class can be scored")
    columns = [names.index(name) for name in evaluated]

    create_score_dataframe = _sed_scores_eval().base_modules.scores.create_score_dataframe
    frame_type = _writable_frame_type()
    frames: dict[str, Any] = {}
    for filename, array in arrays.items():
        timestamps = np.arange(array.shape[0] + 1, dtype=np.float64) * step
        if checked_durations is not None:
            duration = checked_durations[filename]
            # Frames that start at or after the end of the audio (padding) are dropped, the last one is clipped.
            kept = int(np.count_nonzero(timestamps[:-1] < duration))
            timestamps = np.minimum(timestamps[: kept + 1], duration)
            array = array[:kept]
        frame = create_score_dataframe(array[:, columns], timestamps=timestamps, event_classes=evaluated)
        frames[filename] = frame_type(frame)
    return frames, reference, checked_durations, evaluated, ignored


def _fscore_result(
    f: Mapping[str, float],
    p: Mapping[str, float],
    r: Mapping[str, float],
    stats: Mapping[str, Mapping[str, Any]],
    evaluated: list[str],
    ignored: list[str],
) -> dict[str, Any]:
    """Flatten sed_scores_eval's (f, p, r, stats) dicts (with 'macro_average'/'micro_average' keys) to floats."""
    return {
        "macro_f1": float(f["macro_average"]),
        "macro_precision": float(p["macro_average"]),
        "macro_recall": float(r["macro_average"]),
        "micro_f1": float(f["micro_average"]),
        "micro_precision": float(p["micro_average"]),
        "micro_recall": float(r["micro_average"]),
        "per_class": {
            name: {
                "f1": float(f[name]),
                "precision": float(p[name]),
                "recall": float(r[name]),
                "tp": int(stats[name]["tps"]),
                "fp": int(stats[name]["fps"]),
                "n_ref": int(stats[name]["n_ref"]),
            }
            for name in evaluated
        },
        "ignored_labels": list(ignored),
    }


def _threshold_argument(threshold: float | Sequence[float], labels: list[str], evaluated: list[str]) -> Any:
    """Turn a scalar or per-class threshold (one per label) into what sed_scores_eval takes."""
    if np.ndim(threshold) == 0:
        value = float(threshold)  # type: ignore[arg-type]
        if math.isnan(value):
            raise ValueError("threshold must be a number, got NaN")
        return value
    values = [float(value) for value in threshold]  # type: ignore[union-attr]
    if len(values) != len(labels):
        raise ValueError(
            f"threshold must be a number or one threshold per label (C={len(labels)}), got {len(values)} values"
        )
    by_label = dict(zip(labels, values))
    return {name: by_label[name] for name in evaluated}


def psds1(
    scores: Mapping[str, np.ndarray],
    frame_duration: float,
    labels: Sequence[str],
    ground_truth: GroundTruth,
    durations: Mapping[str, float],
) -> dict[str, Any]:
    """PSDS1 (DCASE Task 4 scenario 1) of frame probabilities {file: [T, C]} against reference events.

    `ground_truth` maps filenames to `(onset, offset, label)` tuples (or dicts with onset/offset/label); a scored
    file missing from it has no events, a ground-truth file without scores is an error. `durations` gives each
    scored file's length in seconds: it sets the false-positive rate's time base, and frames past it are dropped.
    Returns `{"psds": float, "per_class": {label: float}, "ignored_labels": [...]}` where the per-class values are
    the single-class PSD-ROC areas (no alpha_st term) that sed_scores_eval returns alongside.
    """
    if durations is None:
        raise ValueError("psds1 needs durations: the false-positive rate is per hour of audio")
    frames, reference, checked_durations, evaluated, ignored = _prepare(
        scores, frame_duration, labels, ground_truth, durations
    )
    value, per_class, _, _ = _sed_scores_eval().intersection_based.psds(
        scores=frames,
        ground_truth=reference,
        audio_durations=checked_durations,
        unit_of_time="hour",
        **PSDS1_SETTINGS,
    )
    return {
        "psds": float(value),
        "per_class": {name: float(per_class[name]) for name in evaluated},
        "ignored_labels": ignored,
    }


def event_based_f1(
    scores: Mapping[str, np.ndarray],
    frame_duration: float,
    labels: Sequence[str],
    ground_truth: GroundTruth,
    threshold: float | Sequence[float] = 0.5,
    onset_collar: float = 0.2,
    offset_collar: float = 0.2,
    offset_collar_rate: float = 0.2,
    durations: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """Collar-based (event-based) F1 of frame probabilities at one decision threshold (scalar or one per label).

    A detected event matches a reference event of its class when its onset is within `onset_collar` seconds and its
    offset within max(`offset_collar`, `offset_collar_rate` * reference length); matching is one-to-one. Optional
    `durations` clip each file's frames to its audio length. Returns macro/micro F1, precision and recall,
    `per_class` {label: {f1, precision, recall, tp, fp, n_ref}} and `ignored_labels`.
    """
    for value, what in ((onset_collar, "onset_collar"), (offset_collar, "offset_collar")):
        if isinstance(value, bool) or not isinstance(value, Real) or not value >= 0:
            raise ValueError(f"{what} must be a number of seconds >= 0, got {value!r}")
    if isinstance(offset_collar_rate, bool) or not isinstance(offset_collar_rate, Real) or not offset_collar_rate >= 0:
        raise ValueError(f"offset_collar_rate must be a number >= 0, got {offset_collar_rate!r}")
    frames, reference, _, evaluated, ignored = _prepare(scores, frame_duration, labels, ground_truth, durations)
    f, p, r, stats = _sed_scores_eval().collar_based.fscore(
        scores=frames,
        ground_truth=reference,
        threshold=_threshold_argument(threshold, list(labels), evaluated),
        onset_collar=float(onset_collar),
        offset_collar=float(offset_collar),
        offset_collar_rate=float(offset_collar_rate),
    )
    return _fscore_result(f, p, r, stats, evaluated, ignored)


def segment_based_f1(
    scores: Mapping[str, np.ndarray],
    frame_duration: float,
    labels: Sequence[str],
    ground_truth: GroundTruth,
    durations: Mapping[str, float],
    threshold: float | Sequence[float] = 0.5,
    segment_length: float = 1.0,
) -> dict[str, Any]:
    """Segment-based F1 of frame probabilities at one decision threshold (scalar or one per label).

    Each file is cut into `segment_length` segments up to its duration; a class is detected in a segment when its
    maximum probability there exceeds the threshold, and is present when a reference event overlaps the segment.
    Returns macro/micro F1, precision and recall, `per_class` {label: {f1, precision, recall, tp, fp, n_ref}}
    (counts in segments) and `ignored_labels`.
    """
    if durations is None:
        raise ValueError("segment_based_f1 needs durations: they fix each file's number of segments")
    length = _check_positive(segment_length, "segment_length")
    frames, reference, checked_durations, evaluated, ignored = _prepare(
        scores, frame_duration, labels, ground_truth, durations
    )
    f, p, r, stats = _sed_scores_eval().segment_based.fscore(
        scores=frames,
        ground_truth=reference,
        audio_durations=checked_durations,
        threshold=_threshold_argument(threshold, list(labels), evaluated),
        segment_length=length,
    )
    return _fscore_result(f, p, r, stats, evaluated, ignored)
