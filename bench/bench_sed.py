"""Sound-event detection on 10 minutes of real audio: batched windows (our pipeline) vs one window at a time.

    python bench/bench_sed.py [--case sed_atstf_tiny] [--minutes 10] [--chunk-batch-size 16] [--repeats 2]

The model is a parity case converted with `audiozoo convert pretrained_sed` (tiny widths, released
architecture otherwise). The baseline is the original inference script's loop: every 10 s window (the last
zero-padded) goes through the front end and the model on its own, then concatenation, scipy's median filter
(as the original) and the same thresholding. Both paths start from the decoded 16 kHz waveform. Prints the time of each, their ratio and
the max abs difference of the frame probabilities.
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import median_filter
from transformers import pipeline

import audiozoo  # noqa: F401  (registers the models and the pipeline)
from audiozoo.audio.io import load_audio
from audiozoo.conversion.pretrained_sed import convert_and_save
from audiozoo.sed.postprocessing import probabilities_to_events
from timing import best_time

REPO = Path(__file__).resolve().parents[1]
PARITY = REPO / "tests" / "fixtures" / "parity"
MODEL_NAMES = {"sed_atstf_tiny": ("ATST-F", 4), "sed_frame_mn06": ("frame_mn06", None),
               "sed_fpasst_tiny": ("fpasst", 4), "sed_beats_tiny": ("BEATs", None)}


def recording(minutes: float) -> np.ndarray:
    """Real audio: the two shared 10 s clips (and reversed copies) tiled to `minutes`, at 16 kHz."""
    clips = [load_audio(path, sampling_rate=16000)[0] for path in sorted((REPO.parent / "shared" / "audio").glob("*.wav"))]
    if not clips:
        clips = [load_audio(REPO / "examples" / "audio" / "clip_a_16k_4s.wav", sampling_rate=16000)[0]]
    pieces = clips + [clip[::-1].copy() for clip in clips]
    samples = int(minutes * 60 * 16000)
    tiled = np.concatenate(pieces * (samples // sum(p.size for p in pieces) + 1))
    return tiled[:samples].astype(np.float32)


def one_window_at_a_time(detector, waveform: np.ndarray) -> tuple[np.ndarray, list]:
    """The original inference loop: front end + model per 10 s window, then concatenate and post-process."""
    model, extractor = detector.model, detector.feature_extractor
    window = 160000
    count = math.ceil(waveform.size / window)
    padded = np.zeros(count * window, dtype=np.float32)
    padded[: waveform.size] = waveform
    chunks = []
    with torch.inference_mode():
        for index in range(count):
            features = extractor(padded[index * window:(index + 1) * window], sampling_rate=16000)
            chunks.append(model(**features).probabilities[0])
    frames = torch.cat(chunks).numpy()[: math.ceil(waveform.size / 16000 * 25)]
    smoothed = median_filter(frames, size=(9, 1))  # the original's post-processing (scipy)
    labels = [model.config.id2label[i] for i in range(frames.shape[1])]
    return smoothed, probabilities_to_events(smoothed, labels, 0.04, 0.5, waveform.size / 16000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", default="sed_atstf_tiny", choices=sorted(MODEL_NAMES))
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--chunk-batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    name, heads = MODEL_NAMES[args.case]
    checkpoint = next(path for path in (PARITY / args.case).glob("*.pt"))
    with tempfile.TemporaryDirectory() as folder:
        convert_and_save(checkpoint, folder, name, num_attention_heads=heads)
        detector = pipeline("sound-event-detection", model=folder, dtype=torch.float32)
        waveform = recording(args.minutes)
        print(f"{args.case} ({name}, tiny widths); {waveform.size / 16000 / 60:g} min of real audio; "
              f"threads={torch.get_num_threads()}; windows of 10 s: {math.ceil(waveform.size / 160000)}")
        one_window_at_a_time(detector, waveform[: 160000 * 2])  # warm-up
        baseline_time, (baseline_probs, baseline_events) = best_time(
            lambda: one_window_at_a_time(detector, waveform), args.repeats, warm_up=False)

        def batched():
            with torch.inference_mode():
                return detector(waveform, sampling_rate=16000, chunk_batch_size=args.chunk_batch_size,
                                return_frame_probabilities=True)

        batched_time, result = best_time(batched, args.repeats, warm_up=False)
    difference = float(np.abs(result["frame_probabilities"] - baseline_probs).max())
    same_events = len(result["events"]) == len(baseline_events)
    print(f"one window at a time (original loop): {baseline_time:7.2f} s")
    print(f"batched pipeline (chunk_batch_size={args.chunk_batch_size}): {batched_time:7.2f} s")
    print(f"speed-up {baseline_time / batched_time:.2f}x ; real-time factor {waveform.size / 16000 / batched_time:.0f}x ; "
          f"max abs diff of frame probabilities {difference:.1e} ; same number of events: {same_events} "
          f"({len(result['events'])})")


if __name__ == "__main__":
    main()
