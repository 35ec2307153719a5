"""Draw a recording's log-mel spectrogram above its detected events as a labelled event roll (matplotlib)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..audio.melspec import LogMelSpectrogram


def plot_events(
    waveform: np.ndarray,
    sampling_rate: int,
    events: Sequence[dict],
    output: str | Path,
    title: str | None = None,
    max_rows: int = 25,
) -> Path:
    """Save a two-panel figure: log-mel spectrogram (64 bins) on top, one row per detected class below.

    Rows are the classes with the highest event scores (at most `max_rows`); each event is a bar from onset to
    offset whose shade is its score. Needs matplotlib (`pip install audiozoo[plot]`).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("plotting needs matplotlib: pip install 'audiozoo[plot]'") from error

    duration = waveform.size / sampling_rate
    melspec = LogMelSpectrogram(sampling_rate, n_fft=1024, hop_length=max(1, sampling_rate // 100), n_mels=64)
    mel = melspec(torch.from_numpy(np.ascontiguousarray(waveform, dtype=np.float32)))[0].numpy()

    best: dict[str, float] = {}
    for event in events:
        best[event["label"]] = max(best.get(event["label"], 0.0), float(event["score"]))
    rows = sorted(best, key=lambda label: -best[label])[:max_rows]
    rows.sort(key=lambda label: min(e["onset"] for e in events if e["label"] == label))

    height = 2.5 + 0.28 * max(len(rows), 4)
    figure, (top, bottom) = plt.subplots(
        2, 1, figsize=(12, height), sharex=True, gridspec_kw={"height_ratios": [2.5, 0.28 * max(len(rows), 4)]}
    )
    top.imshow(mel, origin="lower", aspect="auto", extent=(0, duration, 0, mel.shape[0]), cmap="magma")
    top.set_ylabel("mel bin")
    top.set_title(title or "log-mel spectrogram and detected events")
    colormap = plt.get_cmap("viridis")
    for index, label in enumerate(rows):
        for event in (e for e in events if e["label"] == label):
            bottom.barh(index, event["offset"] - event["onset"], left=event["onset"], height=0.8,
                        color=colormap(float(event["score"])), edgecolor="black", linewidth=0.3)
    bottom.set_yticks(range(len(rows)))
    bottom.set_yticklabels(rows, fontsize=8)
    bottom.set_ylim(len(rows) - 0.5, -0.5)
    bottom.set_xlim(0, duration)
    bottom.set_xlabel("time (s)")
    if not rows:
        bottom.text(duration / 2, 0, "no events above the threshold", ha="center", va="center")
    figure.colorbar(plt.cm.ScalarMappable(cmap=colormap), ax=bottom, label="score", fraction=0.02, pad=0.01)
    figure.tight_layout()
    output = Path(output)
    figure.savefig(output, dpi=110)
    plt.close(figure)
    return output


__all__ = ["plot_events"]
