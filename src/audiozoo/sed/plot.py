"""Draw a recording's log-mel spectrogram above its detected events as a labelled event roll (matplotlib).

matplotlib comes with the `plot` extra (`pip install "audiozoo[plot]"`); it is imported only when a figure is drawn.
The figure is built on matplotlib's object API (no pyplot), so drawing one never changes the caller's backend.

The spectrogram is computed block by block (`SpectrogramImage`), so a long recording is drawn in bounded memory:
up to `MAX_COLUMNS` 10 ms frames the image has one column per frame; a longer recording gets columns that each
average the mel power of 2, 4, 8, ... consecutive frames (then the log), so that at most `MAX_COLUMNS` columns
remain (more than the figure has pixels across). The events are drawn from the event list, each as a bar from its
onset to its offset, whatever the length.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import numpy as np
import torch

from ..audio.melspec import LogMelSpectrogram

PLOT_EXTRA_INSTALL = 'pip install "audiozoo[plot]"'
# spectrogram columns at most (the figure is 12 in x 110 dpi = 1320 px wide)
MAX_COLUMNS = 4096


def require_matplotlib() -> ModuleType:
    """Import matplotlib, or raise an ImportError that names the `plot` extra."""
    try:
        import matplotlib
        import matplotlib.cm
        import matplotlib.colors
        import matplotlib.figure
    except ImportError as error:
        raise ImportError(
            f"plotting events needs matplotlib, which is not part of the base install: {PLOT_EXTRA_INSTALL} "
            f"(missing module: {error.name or error})"
        ) from error
    return matplotlib


def _rows(events: Sequence[dict], max_rows: int) -> tuple[list[str], str]:
    """The classes drawn (at most `max_rows`, the highest best event scores, ordered by first onset) and a note
    saying which rule picked them and how many classes with events were left out."""
    best: dict[str, float] = {}
    first: dict[str, float] = {}
    for event in events:
        label = event["label"]
        best[label] = max(best.get(label, float("-inf")), float(event["score"]))
        first[label] = min(first.get(label, float("inf")), float(event["onset"]))
    rows = sorted(best, key=lambda label: (-best[label], label))[:max_rows]
    rows.sort(key=lambda label: (first[label], label))
    left_out = len(best) - len(rows)
    if not rows:
        return rows, ""
    if left_out:
        note = (f"{len(rows)} of {len(best)} classes with events drawn: the {len(rows)} with the highest event "
                f"score; {left_out} left out")
    else:
        note = f"all {len(best)} classes with events drawn"
    return rows, note + " (rows in order of first onset)"


class SpectrogramImage:
    """The log-mel image of `plot_events` (64 mel bins, 1024-point FFT, 10 ms hop, centred frames with reflect
    padding: `LogMelSpectrogram`'s frames), computed from blocks of samples as they come, in bounded memory.

    `push(block)` adds the next samples (mono float32 at `sampling_rate`); `image()` returns (log mel image
    [64, columns], frames per column, seconds per frame, samples seen). Up to `max_columns` frames there is one
    column per frame; beyond, each column holds the mean mel power of `frames per column` consecutive frames (a
    power of two, doubled whenever the columns would exceed `max_columns`; `expected_samples` lets it start at the
    right one). Memory: one block, the FFT of its frames and the [64, max_columns] image.
    """

    _PIECE = 4096  # frames transformed at a time

    def __init__(self, sampling_rate: int, max_columns: int = MAX_COLUMNS, expected_samples: int | None = None):
        if max_columns < 2:
            raise ValueError(f"max_columns must be at least 2, got {max_columns}")
        self.sampling_rate = int(sampling_rate)
        self.hop = max(1, self.sampling_rate // 100)
        self.melspec = LogMelSpectrogram(self.sampling_rate, n_fft=1024, hop_length=self.hop, n_mels=64)
        self.n_fft, self.half = self.melspec.n_fft, self.melspec.n_fft // 2
        self.max_columns = int(max_columns) // 2 * 2  # even, so that neighbouring columns merge in pairs
        self.per_column = 1
        if expected_samples:
            while (expected_samples // self.hop) // self.per_column >= self.max_columns:
                self.per_column *= 2
        self.samples = 0
        self.frames = 0
        self._head: list[np.ndarray] | None = []  # samples until there are enough for the left reflection
        self._buffer = np.zeros(0, dtype=np.float32)  # padded signal from the next frame's first sample on
        self._tail = np.zeros(0, dtype=np.float32)  # the last half + 1 samples (the right reflection)
        self._sums = np.zeros((64, self.max_columns), dtype=np.float64)
        self._counts = np.zeros(self.max_columns, dtype=np.int64)
        self._done = False

    def push(self, block: np.ndarray) -> None:
        if self._done:
            raise RuntimeError("SpectrogramImage.push after image()")
        block = np.asarray(block, dtype=np.float32).reshape(-1)
        if not block.size:
            return
        self.samples += block.size
        self._tail = np.concatenate([self._tail, block[-(self.half + 1):]])[-(self.half + 1):]
        if self._head is not None:
            self._head.append(block)
            if self.samples <= self.n_fft:
                return
            signal = np.concatenate(self._head)
            self._head = None
            # torch's reflect padding: x[half], ..., x[1] before the signal
            block = np.concatenate([signal[1 : self.half + 1][::-1], signal])
        self._buffer = np.concatenate([self._buffer, block])
        self._frame()

    def _frame(self) -> None:
        """Transform the complete frames of the buffer and drop their samples."""
        while self._buffer.size >= self.n_fft:
            count = min(self._PIECE, 1 + (self._buffer.size - self.n_fft) // self.hop)
            piece = torch.from_numpy(self._buffer[: (count - 1) * self.hop + self.n_fft])
            spectrum = torch.stft(piece, self.n_fft, hop_length=self.hop, win_length=self.melspec.win_length,
                                  window=self.melspec.window, center=False, return_complex=True)
            power = spectrum.real.square() + spectrum.imag.square()
            self._add(torch.matmul(power.t(), self.melspec.filters).numpy())
            self._buffer = self._buffer[count * self.hop :]

    def _add(self, mel: np.ndarray) -> None:
        """Add mel power frames [n, 64] (the next ones) to their columns."""
        last = self.frames + mel.shape[0] - 1
        while last // self.per_column >= self.max_columns:  # halve the resolution: merge neighbouring columns
            half = self.max_columns // 2
            self._sums[:, :half] = self._sums.reshape(64, half, 2).sum(axis=2)
            self._counts[:half] = self._counts.reshape(half, 2).sum(axis=1)
            self._sums[:, half:] = 0.0
            self._counts[half:] = 0
            self.per_column *= 2
        columns = np.arange(self.frames, self.frames + mel.shape[0]) // self.per_column
        np.add.at(self._sums.T, columns, mel.astype(np.float64))
        np.add.at(self._counts, columns, 1)
        self.frames += mel.shape[0]

    def image(self) -> tuple[np.ndarray, int, float, int]:
        """(log mel image [64, columns], frames per column, seconds per frame, samples); ends the input."""
        if not self._done:
            self._done = True
            if self._head is not None:  # a short signal: all of it at once, as LogMelSpectrogram does it
                signal = np.concatenate(self._head) if self._head else np.zeros(0, dtype=np.float32)
                self._head = None
                mel = self.melspec.mel_power(torch.from_numpy(signal))[0].t().numpy()
                self._add(mel)
            else:
                # x[N - 2], ..., x[N - half - 1] after the signal
                self._buffer = np.concatenate([self._buffer, self._tail[:-1][::-1]])
                self._frame()
        used = -(-self.frames // self.per_column)
        mean = self._sums[:, :used] / np.maximum(self._counts[:used], 1)
        image = np.log(mean + self.melspec.log_offset).astype(np.float32)
        return image, self.per_column, self.hop / self.sampling_rate, self.samples


def plot_events(
    waveform: np.ndarray | SpectrogramImage,
    sampling_rate: int,
    events: Sequence[dict],
    output: str | Path,
    title: str | None = None,
    max_rows: int = 25,
) -> Path:
    """Save a two-panel figure: log-mel spectrogram (64 bins) on top, one row per detected class below.

    Both panels share one time axis in seconds (0 to the recording's length) and have the same width: their colour
    bars (log-mel power, event score) sit in a column of their own. Rows are the classes with the highest event
    scores (at most `max_rows`); a note above the event roll says how many classes were left out. Each event is a
    bar from onset to offset whose shade is its score. `waveform` is the recording (mono, at `sampling_rate`) or a
    `SpectrogramImage` that has seen it block by block (a long recording: its columns then average several 10 ms
    frames, which the figure notes). Needs matplotlib (`pip install "audiozoo[plot]"`).
    """
    matplotlib = require_matplotlib()
    if max_rows < 1:
        raise ValueError(f"max_rows must be at least 1, got {max_rows}")
    if isinstance(waveform, SpectrogramImage):
        spectrogram = waveform
        if spectrogram.sampling_rate != sampling_rate:
            raise ValueError(f"the spectrogram is at {spectrogram.sampling_rate} Hz, not {sampling_rate} Hz")
    else:
        waveform = np.asarray(waveform, dtype=np.float32).reshape(-1)
        spectrogram = SpectrogramImage(sampling_rate, expected_samples=waveform.size)
        for start in range(0, waveform.size, 1 << 20):
            spectrogram.push(waveform[start : start + (1 << 20)])
    mel, per_column, frame, samples = spectrogram.image()
    duration = samples / sampling_rate
    # centred frames: frame t covers [(t - 1/2) hop, (t + 1/2) hop) samples, so the image spans exactly that (a last
    # column of fewer frames is drawn as wide as the others; the axis ends with the recording)
    extent = (-0.5 * frame, (mel.shape[1] * per_column - 0.5) * frame, 0, mel.shape[0])

    rows, note = _rows(events, max_rows)
    row_height = 0.28 * max(len(rows), 4)
    figure = matplotlib.figure.Figure(figsize=(12, 2.8 + row_height + 0.6), layout="constrained")
    grid = figure.add_gridspec(2, 2, width_ratios=[1, 0.015], height_ratios=[2.5, row_height])
    top = figure.add_subplot(grid[0, 0])
    bottom = figure.add_subplot(grid[1, 0], sharex=top)
    image = top.imshow(mel, origin="lower", aspect="auto", extent=extent, cmap="magma", interpolation="nearest")
    top.set_ylabel("mel bin")
    top.set_title(title or "log-mel spectrogram and detected events")
    if per_column > 1:
        top.set_title(f"each column: mean mel power of {per_column} frames ({per_column * frame:g} s)", loc="right",
                      fontsize=8)
    top.tick_params(labelbottom=False)
    figure.colorbar(image, cax=figure.add_subplot(grid[0, 1]), label="log mel power")

    colormap = matplotlib.colormaps["viridis"]
    norm = matplotlib.colors.Normalize(0.0, 1.0)
    for index, label in enumerate(rows):
        spans = [(float(e["onset"]), float(e["offset"]) - float(e["onset"]), float(e["score"]))
                 for e in events if e["label"] == label]
        bottom.broken_barh([(onset, width) for onset, width, _ in spans], (index - 0.4, 0.8),
                           facecolors=[colormap(norm(score)) for _, _, score in spans], edgecolor="black",
                           linewidth=0.3)
    bottom.set_yticks(range(len(rows)), rows, fontsize=8)
    bottom.set_ylim(max(len(rows), 1) - 0.5, -0.5)
    bottom.set_xlabel("time (s)")
    if rows:
        bottom.set_title(note, fontsize=8, loc="left")
    else:
        bottom.text(duration / 2, 0, "no events above the threshold", ha="center", va="center")
    figure.colorbar(matplotlib.cm.ScalarMappable(norm=norm, cmap=colormap), cax=figure.add_subplot(grid[1, 1]),
                    label="score")
    top.set_xlim(0, duration)  # shared: both panels show exactly the recording, 0 to its length in seconds
    output = Path(output)
    figure.savefig(output, dpi=110)
    return output


__all__ = ["MAX_COLUMNS", "PLOT_EXTRA_INSTALL", "SpectrogramImage", "plot_events", "require_matplotlib"]
