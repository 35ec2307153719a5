"""Draw a recording's log-mel spectrogram above its detected events as a labelled event roll (matplotlib).

matplotlib comes with the `plot` extra (`pip install "audiozoo[plot]"`); it is imported only when a figure is drawn.
The figure is built on matplotlib's object API (no pyplot), so drawing one never changes the caller's backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import numpy as np
import torch

from ..audio.melspec import LogMelSpectrogram

PLOT_EXTRA_INSTALL = 'pip install "audiozoo[plot]"'


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


def plot_events(
    waveform: np.ndarray,
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
    bar from onset to offset whose shade is its score. Needs matplotlib (`pip install "audiozoo[plot]"`).
    """
    matplotlib = require_matplotlib()
    if max_rows < 1:
        raise ValueError(f"max_rows must be at least 1, got {max_rows}")
    waveform = np.ascontiguousarray(waveform, dtype=np.float32)
    duration = waveform.size / sampling_rate
    hop = max(1, sampling_rate // 100)
    melspec = LogMelSpectrogram(sampling_rate, n_fft=1024, hop_length=hop, n_mels=64)
    mel = melspec(torch.from_numpy(waveform))[0].numpy()
    # centred frames: frame t covers [(t - 1/2) hop, (t + 1/2) hop) samples, so the image spans exactly that
    frame = hop / sampling_rate
    extent = (-0.5 * frame, (mel.shape[1] - 0.5) * frame, 0, mel.shape[0])

    rows, note = _rows(events, max_rows)
    row_height = 0.28 * max(len(rows), 4)
    figure = matplotlib.figure.Figure(figsize=(12, 2.8 + row_height + 0.6), layout="constrained")
    grid = figure.add_gridspec(2, 2, width_ratios=[1, 0.015], height_ratios=[2.5, row_height])
    top = figure.add_subplot(grid[0, 0])
    bottom = figure.add_subplot(grid[1, 0], sharex=top)
    image = top.imshow(mel, origin="lower", aspect="auto", extent=extent, cmap="magma", interpolation="nearest")
    top.set_ylabel("mel bin")
    top.set_title(title or "log-mel spectrogram and detected events")
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


__all__ = ["PLOT_EXTRA_INSTALL", "plot_events", "require_matplotlib"]
