"""Frame probabilities -> sound events: median filtering, thresholding, and DESED-style event TSV files.

A sound-event-detection model emits per-frame class probabilities [T, C]. To turn them into events, the
probabilities are smoothed along time with a median filter (PretrainedSED uses `scipy.ndimage.median_filter` with
size (9, 1)), thresholded, and every contiguous run of active frames of a class becomes one event. Events are
exchanged as DESED / AudioSet-strong style TSV files (`filename  onset  offset  event_label`).

For long recordings the same steps run on frames that arrive in blocks, in memory that does not grow with the
recording: `MedianFilterStream` (the filter, bit-identical to `median_filter_probabilities`), `EventStream` (events,
equal to `probabilities_to_events`, released in their final order as soon as no later frame can change or precede
them) and `EventsTsvWriter` (rows written as events come, those of a failed file withdrawn).
"""

from __future__ import annotations

import csv
import functools
import heapq
import math
import os
from collections.abc import Callable, Mapping, Sequence
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import median_filter

TSV_COLUMNS = ("filename", "onset", "offset", "event_label")

__all__ = [
    "TSV_COLUMNS",
    "EventStream",
    "EventsTsvWriter",
    "MedianFilterStream",
    "median_filter_probabilities",
    "probabilities_to_events",
    "read_events_tsv",
    "write_events_tsv",
]


def _as_probability_matrix(probabilities: np.ndarray, name: str = "probabilities") -> np.ndarray:
    """Return `probabilities` as a 2-D [T, C] array, or raise a ValueError that names the expected shape."""
    array = np.asarray(probabilities)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array [T, C] (frames x classes), got shape {array.shape}")
    return array


def _check_window(window: object, what: str) -> int:
    """Validate one median-filter window length (an integer >= 1) and return it as int."""
    if isinstance(window, bool) or not isinstance(window, Integral):
        raise ValueError(f"{what} must be an integer >= 1, got {window!r}")
    if int(window) < 1:
        raise ValueError(f"{what} must be an integer >= 1, got {window!r}")
    return int(window)


def _median_along_time(array: np.ndarray, size: int) -> np.ndarray:
    """scipy.ndimage.median_filter(array, size=(size, 1)) (mode 'reflect'): the same numbers, faster.

    A median selects one of the inputs (for an even window scipy takes the upper of the two middle values), so
    `_window_medians` gives scipy's numbers exactly; on [15000, 447] frame probabilities (10 minutes of AudioSet-strong
    classes) with window 9 it takes 0.04-0.06 s where scipy takes 0.8-0.9 s (one thread).
    """
    before, after = size // 2, (size - 1) // 2
    array = np.ascontiguousarray(array)
    # scipy's 'reflect' repeats the edge sample: (d c b a | a b c d | d c b a)
    if before > array.shape[0]:  # a window over twice the signal: scipy's own boundary rules, rare and small
        return median_filter(array, size=(size, 1))
    padded = np.concatenate([array[:before][::-1], array, array[array.shape[0] - after :][::-1]])
    return _window_medians(padded, size)


# windows up to this size take the compare-exchange network (its steps grow as size**2; on [15000, 447], one thread:
# window 9 0.06 s vs 1.3 s for torch's median of the unfolded windows, 25 0.45 s vs 4.2 s), larger ones torch's
_NETWORK_MAX_WINDOW = 25
_NETWORK_PIECE_ELEMENTS = 1 << 15  # values per frame block of the network (a block's size copies stay in cache)


def _window_medians(padded: np.ndarray, size: int) -> np.ndarray:
    """Medians of the `size`-frame windows of already padded frames [T + size - 1, C] -> [T, C] (a new array)."""
    if size <= _NETWORK_MAX_WINDOW and not np.isnan(padded).any():
        return _network_medians(padded, size)
    windows = torch.from_numpy(np.ascontiguousarray(padded)).t().contiguous().unfold(1, size, 1)  # [C, T, size]
    if size % 2:
        return windows.median(dim=-1).values.t().contiguous().numpy()
    return windows.sort(dim=-1).values[..., size // 2].t().contiguous().numpy()


@functools.cache
def _median_network(size: int) -> tuple[tuple[int, int, bool, bool], ...]:
    """Compare-exchange steps (low, high, keep min, keep max) that leave the value of rank size // 2 of `size`
    values at position size // 2: odd-even transposition sort (a sorting network for any size) without the steps
    the middle position does not depend on, and of a step only the half (min into low, max into high) read later.
    Window 9: 30 steps, 52 min/max passes."""
    steps = [(index, index + 1) for round_ in range(size) for index in range(round_ % 2, size - 1, 2)]
    needed, kept = {size // 2}, []
    for low, high in reversed(steps):
        keep_low, keep_high = low in needed, high in needed
        if keep_low or keep_high:
            kept.append((low, high, keep_low, keep_high))
            needed |= {low, high}
    return tuple(reversed(kept))


def _network_medians(padded: np.ndarray, size: int) -> np.ndarray:
    """`_window_medians` by the network of `_median_network` on whole frame blocks: element-wise minima and maxima
    of the `size` shifted copies of a block (no NaN: they would not order)."""
    frames, classes = padded.shape[0] - size + 1, padded.shape[1]
    output = np.empty((frames, classes), dtype=padded.dtype)
    steps = _median_network(size)
    block = max(8, _NETWORK_PIECE_ELEMENTS // max(1, classes))
    spare_buffer = np.empty((min(block, frames), classes), dtype=padded.dtype)
    for start in range(0, frames, block):
        stop = min(frames, start + block)
        values = [padded[start + offset : stop + offset].copy() for offset in range(size)]
        spare = spare_buffer[: stop - start]
        for low, high, keep_low, keep_high in steps:
            smaller, larger = values[low], values[high]
            if keep_low and keep_high:
                np.minimum(smaller, larger, out=spare)
                np.maximum(smaller, larger, out=larger)
                values[low], spare = spare, smaller
            elif keep_low:
                np.minimum(smaller, larger, out=smaller)
            else:
                np.maximum(smaller, larger, out=larger)
        output[start:stop] = values[size // 2]
    return output


def median_filter_probabilities(probabilities: np.ndarray, window: int | Sequence[int]) -> np.ndarray:
    """Median-filter frame probabilities [T, C] along time, with one window or one window per class.

    Uses `scipy.ndimage.median_filter(x, size=(window, 1))` with scipy's default boundary mode 'reflect', as the
    original PretrainedSED post-processing does, so results match it exactly. A sequence of C windows filters each
    class column with its own window (class-dependent smoothing, as tuned per class in DCASE systems). Window 1
    leaves a column unchanged; odd and even windows are both accepted. Returns a new array of the input's dtype.
    """
    array = _as_probability_matrix(probabilities)
    num_classes = array.shape[1]
    if np.ndim(window) == 0:
        size = _check_window(window, "window")
        if size == 1:
            return array.copy()
        return _median_along_time(array, size)
    sizes = _window_sizes(window, num_classes)
    filtered = array.copy()
    for size in sorted(set(sizes)):
        if size == 1:
            continue
        columns = [index for index, s in enumerate(sizes) if s == size]
        # Filtering a column block with size (w, 1) never mixes columns, so grouping by window is exact.
        filtered[:, columns] = _median_along_time(array[:, columns], size)
    return filtered


def _window_sizes(window: int | Sequence[int], num_classes: int) -> list[int]:
    """One checked median window per class, from one window or a sequence of C."""
    if np.ndim(window) == 0:
        return [_check_window(window, "window")] * num_classes
    windows = list(window)
    if len(windows) != num_classes:
        raise ValueError(
            f"window must be an integer or a sequence with one window per class (C={num_classes}), "
            f"got a sequence of length {len(windows)}"
        )
    return [_check_window(w, f"window[{index}]") for index, w in enumerate(windows)]


class MedianFilterStream:
    """`median_filter_probabilities` over frames that arrive in blocks, in memory bounded by the block size.

    `push` takes the next frames [n, C] of the signal (only real frames: the signal has at least as many frames as
    were pushed) and returns the filtered frames that are final: frame t needs the frames up to t + window // 2, so
    the last (window - 1) // 2 frames (of the largest window) wait for the next block. `finish` returns the rest,
    reflected at the end of the signal as scipy's 'reflect' mode does. Concatenated, the outputs are bit for bit
    `median_filter_probabilities(all_frames, window)`: every output is the median of the same frames in the same
    order (a signal too short for the streaming windows is filtered by that function itself at `finish`).
    Only the frames still needed are kept: about one block plus the largest window.
    """

    _PIECE = 2048  # frames filtered at a time (bounds the [C, piece, window] temporary)

    def __init__(self, num_classes: int, window: int | Sequence[int]):
        if isinstance(num_classes, bool) or not isinstance(num_classes, Integral) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
        self.num_classes = int(num_classes)
        self.window = window
        sizes = _window_sizes(window, self.num_classes)
        self._groups = [(size, np.array([i for i, s in enumerate(sizes) if s == size]))
                        for size in sorted(set(sizes)) if size > 1]
        if len(self._groups) == 1 and len(self._groups[0][1]) == self.num_classes:
            self._groups = [(self._groups[0][0], slice(None))]  # one window for all classes: no column gather
        self._before = max((size // 2 for size, _ in self._groups), default=0)
        self._after = max(((size - 1) // 2 for size, _ in self._groups), default=0)
        self._buffer = np.zeros((0, self.num_classes), dtype=np.float32)
        self._start = 0  # global index of the buffer's first frame
        self.received = 0  # frames pushed
        self.released = 0  # filtered frames returned
        self._finished = False

    def push(self, frames: np.ndarray) -> np.ndarray:
        """Add the next frames [n, C]; returns the filtered frames now final (possibly none), in order."""
        if self._finished:
            raise RuntimeError("MedianFilterStream.push after finish")
        frames = _as_probability_matrix(frames, "frames")
        if frames.shape[1] != self.num_classes:
            raise ValueError(f"frames must have {self.num_classes} class columns, got shape {frames.shape}")
        if self.received == 0:
            self._buffer = np.empty((0, self.num_classes), dtype=frames.dtype)
        self._buffer = np.concatenate([self._buffer, frames]) if len(self._buffer) else np.array(frames)
        self.received += frames.shape[0]
        # frame t is final once t + after < received; and only once the signal is known to be longer than
        # before + after frames (shorter signals take median_filter_probabilities' own boundary rules at finish)
        end = self.received - self._after
        if self.received <= self._before + self._after or end <= self.released:
            return self._buffer[:0].copy()
        return self._release(end, final=False)

    def finish(self) -> np.ndarray:
        """The remaining filtered frames: the signal ends with the last frame pushed."""
        if self._finished:
            raise RuntimeError("MedianFilterStream.finish called twice")
        self._finished = True
        if self.released == 0:
            filtered = median_filter_probabilities(self._buffer, self.window)
            self.released = self.received
            self._buffer = self._buffer[:0]
            return filtered
        return self._release(self.received, final=True)

    def _release(self, end: int, final: bool) -> np.ndarray:
        begin, total = self.released, self.received
        pieces = []
        for piece_begin in range(begin, end, self._PIECE):
            piece_end = min(end, piece_begin + self._PIECE)
            local = slice(piece_begin - self._start, piece_end - self._start)
            out = None
            for size, columns in self._groups:
                before, after = size // 2, (size - 1) // 2
                first, last = piece_begin - before, piece_end + after
                if first >= 0 and (not final or last <= total):  # no reflection: the frames as they are
                    padded = self._buffer[first - self._start : last - self._start]
                else:
                    index = np.arange(first, last)
                    index = np.where(index < 0, -index - 1, index)  # scipy 'reflect': (d c b a | a b c d | d c b a)
                    if final:
                        index = np.where(index >= total, 2 * total - 1 - index, index)
                    padded = self._buffer[index - self._start]
                if isinstance(columns, slice):
                    out = _window_medians(padded, size)
                    break
                if out is None:
                    out = self._buffer[local].copy()  # window-1 columns stay as they are
                out[:, columns] = _window_medians(padded[:, columns], size)
            if out is None:
                out = self._buffer[local].copy()
            pieces.append(out)
        self.released = end
        keep_from = max(0, end - self._before)  # the next output needs frames from end - before on
        self._buffer = self._buffer[keep_from - self._start :]
        self._start = keep_from
        if not pieces:
            return self._buffer[:0].copy()
        return np.concatenate(pieces) if len(pieces) > 1 else pieces[0]


def _per_class_thresholds(threshold: float | Sequence[float], num_classes: int) -> np.ndarray:
    """Broadcast a scalar threshold to C classes, or validate a per-class sequence of length C."""
    if np.ndim(threshold) == 0:
        value = float(threshold)  # type: ignore[arg-type]
        if math.isnan(value):
            raise ValueError("threshold must be a number, got NaN")
        return np.full(num_classes, value)
    thresholds = np.asarray(threshold, dtype=float)
    if thresholds.ndim != 1 or thresholds.shape[0] != num_classes:
        raise ValueError(
            f"threshold must be a number or a sequence with one threshold per class (C={num_classes}), "
            f"got shape {thresholds.shape}"
        )
    if np.isnan(thresholds).any():
        raise ValueError("threshold must not contain NaN")
    return thresholds


def _check_labels(labels: Sequence[str], num_classes: int) -> list[str]:
    """Validate that there is one distinct string label per class column."""
    if isinstance(labels, str):
        raise ValueError("labels must be a sequence of class names, not a single string")
    names = list(labels)
    if len(names) != num_classes:
        raise ValueError(f"labels must have one name per class (C={num_classes}), got {len(names)} labels")
    for name in names:
        if not isinstance(name, str) or not name:
            raise ValueError(f"labels must be non-empty strings, got {name!r}")
    if len(set(names)) != len(names):
        duplicates = sorted({name for name in names if names.count(name) > 1})
        raise ValueError(f"labels must be distinct, got duplicates {duplicates}")
    return names


def probabilities_to_events(
    probabilities: np.ndarray,
    labels: Sequence[str],
    frame_duration: float,
    threshold: float | Sequence[float] = 0.5,
    duration: float | None = None,
) -> list[dict]:
    """Turn frame probabilities [T, C] into events: each contiguous run of frames with p > threshold is one event.

    An event is `{"label", "onset", "offset", "score"}` with onset = first_frame * frame_duration and
    offset = (last_frame + 1) * frame_duration in seconds, and score = the maximum probability inside the event.
    `threshold` is one number or one per class. With `duration` (the clip length in seconds), offsets are clipped
    to it and events starting at or after it are dropped: frames are often padded past the end of the audio.
    Events are sorted by onset, then label.
    """
    array = _as_probability_matrix(probabilities)
    num_classes = array.shape[1]
    names = _check_labels(labels, num_classes)
    if isinstance(frame_duration, bool) or not isinstance(frame_duration, Real) or not frame_duration > 0:
        raise ValueError(f"frame_duration must be a positive number of seconds, got {frame_duration!r}")
    if duration is not None and (isinstance(duration, bool) or not isinstance(duration, Real) or not duration > 0):
        raise ValueError(f"duration must be None or a positive number of seconds, got {duration!r}")
    thresholds = _per_class_thresholds(threshold, num_classes)

    active = array > thresholds[None, :]
    # Pad with inactive frames so every run has a rising and a falling edge.
    edges = np.diff(np.pad(active.astype(np.int8), ((1, 1), (0, 0))), axis=0)
    events: list[dict] = []
    for class_index, name in enumerate(names):
        starts = np.flatnonzero(edges[:, class_index] == 1)
        stops = np.flatnonzero(edges[:, class_index] == -1)  # exclusive end frame
        for start, stop in zip(starts.tolist(), stops.tolist()):
            onset = start * float(frame_duration)
            offset = stop * float(frame_duration)
            if duration is not None:
                if onset >= duration:
                    continue
                offset = min(offset, float(duration))
            score = float(array[start:stop, class_index].max())
            events.append({"label": name, "onset": onset, "offset": offset, "score": score})
    events.sort(key=lambda event: (event["onset"], event["label"]))
    return events


class EventStream:
    """`probabilities_to_events` over filtered frames that arrive in blocks; events come out as soon as they are final.

    `push` takes the next frames [n, C] and returns the events that no later frame can change or precede, in the
    order of `probabilities_to_events` (onset, then label); `finish(duration)` closes the events still running at
    the end (offset clipped to `duration`) and returns the rest. Each released event is also passed to `on_event`.
    The events, their order and their numbers (onset = first frame x frame_duration, offset = end frame x
    frame_duration, score = max probability) are those of `probabilities_to_events` on all frames at once, when
    the frames pushed are the signal's ceil(duration / frame_duration) frames (then an event that ends before the
    last frame ends before `duration`, and the clipping only touches events running at the end). Memory: one running
    event per class plus the closed events that wait for an earlier-starting running event to close (a class active
    for the whole recording holds back the events of the others: those are the output, not the input).
    """

    def __init__(self, labels: Sequence[str], frame_duration: float, threshold: float | Sequence[float] = 0.5,
                 on_event: Callable[[dict], object] | None = None):
        names = labels if isinstance(labels, str) else list(labels)
        self.labels = _check_labels(names, len(names))
        if isinstance(frame_duration, bool) or not isinstance(frame_duration, Real) or not frame_duration > 0:
            raise ValueError(f"frame_duration must be a positive number of seconds, got {frame_duration!r}")
        self.frame_duration = float(frame_duration)
        self.num_classes = len(self.labels)
        self._thresholds = _per_class_thresholds(threshold, self.num_classes)
        self.on_event = on_event
        self.position = 0  # frames seen
        self._active = np.zeros(self.num_classes, dtype=bool)
        self._start = np.zeros(self.num_classes, dtype=np.int64)  # first frame of each running event
        self._best = np.full(self.num_classes, -np.inf)  # its score so far (frames of earlier blocks)
        self._closed: list[tuple[int, str, dict]] = []  # heap of (start frame, label, event)
        self._finished = False

    def push(self, frames: np.ndarray) -> list[dict]:
        """Add the next filtered frames [n, C]; returns the events now final, in order."""
        if self._finished:
            raise RuntimeError("EventStream.push after finish")
        array = _as_probability_matrix(frames, "frames")
        if array.shape[1] != self.num_classes:
            raise ValueError(f"frames must have {self.num_classes} class columns, got shape {array.shape}")
        if array.shape[0] == 0:
            return []
        position = self.position
        active = array > self._thresholds[None, :]
        previous = np.concatenate([self._active[None, :], active[:-1]])
        classes, rows = np.nonzero((active != previous).T)  # class by class, frames in order
        for class_index, row in zip(classes.tolist(), rows.tolist()):
            if active[row, class_index]:  # rising edge: an event starts at this frame
                self._start[class_index], self._best[class_index] = position + row, -np.inf
                continue
            start = int(self._start[class_index])  # falling edge: the event ends before this frame
            first = max(0, start - position)
            score = max(self._best[class_index], float(array[first:row, class_index].max()) if row > first else -np.inf)
            self._close(class_index, start, position + row, score, None)
        for class_index in np.flatnonzero(active[-1]).tolist():  # still running: remember their best score
            first = max(0, int(self._start[class_index]) - position)
            self._best[class_index] = max(self._best[class_index], float(array[first:, class_index].max()))
        self._active = active[-1].copy()
        self.position = position + array.shape[0]
        running = [(int(self._start[index]), self.labels[index]) for index in np.flatnonzero(self._active).tolist()]
        # later events start at or after self.position, or are running now
        return self._release(min(running + [(self.position, "")]))

    def finish(self, duration: float | None = None) -> list[dict]:
        """Close the events running at the end (offsets clipped to `duration` seconds) and return the rest."""
        if self._finished:
            raise RuntimeError("EventStream.finish called twice")
        if duration is not None and (isinstance(duration, bool) or not isinstance(duration, Real)
                                     or not duration > 0):
            raise ValueError(f"duration must be None or a positive number of seconds, got {duration!r}")
        self._finished = True
        for class_index in np.flatnonzero(self._active).tolist():
            self._close(class_index, int(self._start[class_index]), self.position, self._best[class_index], duration)
        self._active[:] = False
        return self._release(None)

    def _close(self, class_index: int, start: int, stop: int, score: float, duration: float | None) -> None:
        onset, offset = start * self.frame_duration, stop * self.frame_duration
        if duration is not None:
            if onset >= duration:
                return
            offset = min(offset, float(duration))
        label = self.labels[class_index]
        event = {"label": label, "onset": onset, "offset": offset, "score": float(score)}
        heapq.heappush(self._closed, (start, label, event))

    def _release(self, before: tuple[int, str] | None) -> list[dict]:
        released = []
        while self._closed and (before is None or self._closed[0][:2] < before):
            event = heapq.heappop(self._closed)[2]
            released.append(event)
            if self.on_event is not None:
                self.on_event(event)
        return released


def _check_field(value: str, what: str) -> str:
    """Refuse text that would break the TSV layout (tabs or line breaks)."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")
    if any(char in value for char in "\t\r\n"):
        raise ValueError(f"{what} must not contain tabs or line breaks, got {value!r}")
    return value


def write_events_tsv(path: str | os.PathLike[str], events_by_file: Mapping[str, list[dict]]) -> None:
    """Write events as a DESED / AudioSet-strong style TSV (header `filename onset offset event_label`, tab-separated).

    Onsets and offsets are written with 3 decimals (milliseconds). Files are written in the mapping's order and
    events in list order; a file without events contributes no row, but the header is always written. Scores are
    not part of this format and are dropped.
    """
    lines = ["\t".join(TSV_COLUMNS)]
    for filename, events in events_by_file.items():
        _check_field(filename, "filename")
        lines.extend(_tsv_row(filename, index, event) for index, event in enumerate(events))
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        handle.write("\n".join(lines) + "\n")


def _tsv_row(filename: str, index: int, event: dict) -> str:
    """One TSV line (no newline) for event `index` of `filename`, checked."""
    try:
        label, onset, offset = event["label"], float(event["onset"]), float(event["offset"])
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(
            f"event {index} of {filename!r} must be a dict with 'label', 'onset' and 'offset', got {event!r}"
        ) from error
    _check_field(label, f"label of event {index} of {filename!r}")
    if not (math.isfinite(onset) and math.isfinite(offset)):
        raise ValueError(f"event {index} of {filename!r} has a non-finite onset/offset: {event!r}")
    return f"{filename}\t{onset:.3f}\t{offset:.3f}\t{label}"


class EventsTsvWriter:
    """Write the TSV of `write_events_tsv` row by row, as events come (the file grows during a long run).

    `start_file(name)` begins a file's rows, `add(event)` writes one (and flushes it), `discard_file()` withdraws the
    rows of the current file (one that failed part-way), `close(keep)` ends; `close(keep=False)` removes the file
    (nothing was detected because no input succeeded). The same rows, in the same format, as `write_events_tsv`.
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self._handle = open(self.path, "w", encoding="utf-8", newline="\n")
        self._handle.write("\t".join(TSV_COLUMNS) + "\n")
        self._handle.flush()
        self.rows = 0
        self._filename: str | None = None
        self._mark, self._mark_rows, self._index = self._handle.tell(), 0, 0

    def start_file(self, filename: str) -> None:
        self._filename = _check_field(filename, "filename")
        self._mark, self._mark_rows, self._index = self._handle.tell(), self.rows, 0

    def add(self, event: dict) -> None:
        if self._filename is None:
            raise RuntimeError("EventsTsvWriter.add before start_file")
        self._handle.write(_tsv_row(self._filename, self._index, event) + "\n")
        self._handle.flush()
        self._index += 1
        self.rows += 1

    def discard_file(self) -> None:
        """Withdraw the rows written since the last `start_file`."""
        self._handle.seek(self._mark)
        self._handle.truncate()
        self.rows, self._filename = self._mark_rows, None

    def close(self, keep: bool = True) -> None:
        self._handle.close()
        if not keep:
            self.path.unlink(missing_ok=True)


def read_events_tsv(path: str | os.PathLike[str]) -> dict[str, list[dict]]:
    """Read a DESED-style event TSV back into `{filename: [{"label", "onset", "offset"}, ...]}`.

    The header must name the columns filename, onset, offset and event_label (any order, extra columns ignored).
    Rows with an empty onset, offset and label (DESED's way to list a file without events) give the file an empty
    list. Files keep the order of their first row; there is no score in this format.
    """
    events_by_file: dict[str, list[dict]] = {}
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{os.fspath(path)}: empty file, expected a header with the columns {list(TSV_COLUMNS)}")
        missing = [column for column in TSV_COLUMNS if column not in header]
        if missing:
            raise ValueError(
                f"{os.fspath(path)}: header must contain the columns {list(TSV_COLUMNS)}, "
                f"got {header} (missing {missing})"
            )
        position = {column: header.index(column) for column in TSV_COLUMNS}
        for line_number, row in enumerate(reader, start=2):
            if not row or all(not cell.strip() for cell in row):
                continue
            row = row + [""] * (len(header) - len(row))
            filename = row[position["filename"]]
            onset_text = row[position["onset"]].strip()
            offset_text = row[position["offset"]].strip()
            label = row[position["event_label"]].strip()
            if not filename:
                raise ValueError(f"{os.fspath(path)}:{line_number}: empty filename")
            file_events = events_by_file.setdefault(filename, [])
            if not onset_text and not offset_text and not label:
                continue
            try:
                onset, offset = float(onset_text), float(offset_text)
            except ValueError as error:
                raise ValueError(
                    f"{os.fspath(path)}:{line_number}: onset and offset must be numbers, "
                    f"got {onset_text!r} and {offset_text!r}"
                ) from error
            if not label:
                raise ValueError(f"{os.fspath(path)}:{line_number}: empty event_label")
            file_events.append({"label": label, "onset": onset, "offset": offset})
    return events_by_file
