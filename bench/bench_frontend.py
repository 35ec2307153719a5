"""Batched Kaldi filterbank vs transformers' ASTFeatureExtractor vs our filterbank one clip at a time.

    python bench/bench_frontend.py [--clips 32] [--seconds 10] [--repeats 5]

All three compute the same features: Kaldi fbank, 128 mel bins, 25/10 ms frames, hanning window (AST's choice;
without torchaudio, ASTFeatureExtractor runs its numpy path). Clips are cut from the two real recordings in
../shared/audio (resampled to 16 kHz with soxr, random offsets and gains); seeded noise if those are absent.
Prints the max abs difference of the log-mel features and the speed ratios.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import soundfile
import soxr
import torch
from transformers import ASTFeatureExtractor

from audiozoo.audio import KaldiFbank
from timing import best_time

SHARED_AUDIO = Path(__file__).resolve().parents[1].parent / "shared" / "audio"


def make_clips(count: int, seconds: float) -> tuple[list[np.ndarray], str]:
    rng = np.random.default_rng(0)
    length = int(seconds * 16000)
    sources = []
    for name in ("clip_a_32k.wav", "clip_b_32k.wav"):
        path = SHARED_AUDIO / name
        if path.is_file():
            samples, rate = soundfile.read(path, dtype="float32")
            sources.append(soxr.resample(samples, rate, 16000, "HQ"))
    if not sources:
        clips = [(0.1 * rng.standard_normal(length)).astype(np.float32) for _ in range(count)]
        return clips, "seeded noise (../shared/audio not found)"
    clips = []
    for index in range(count):
        source = np.tile(sources[index % len(sources)], 2)  # two copies, so any offset leaves `length` samples
        offset = int(rng.integers(0, len(source) - length))
        clips.append((source[offset:offset + length] * rng.uniform(0.3, 1.0)).astype(np.float32))
    return clips, f"real audio ({', '.join(p.name for p in sorted(SHARED_AUDIO.glob('*.wav')))}), random offsets/gains"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    clips, source = make_clips(args.clips, args.seconds)
    print(f"{args.clips} clips x {args.seconds:g} s at 16 kHz: {source}; torch threads={torch.get_num_threads()}")

    ast_fe = ASTFeatureExtractor(num_mel_bins=128, max_length=1024, do_normalize=False)
    fbank = KaldiFbank(num_mel_bins=128, window="hanning")
    stacked = torch.from_numpy(np.stack(clips))
    frames = fbank.num_frames(stacked.shape[1])

    ast_time, ast_out = best_time(lambda: ast_fe(clips, sampling_rate=16000, return_tensors="pt")["input_values"],
                                  max(1, args.repeats // 2))

    def batched():
        with torch.inference_mode():
            return fbank(stacked)

    def per_clip():
        with torch.inference_mode():
            return torch.cat([fbank(torch.from_numpy(clip)) for clip in clips])

    batch_time, batch_out = best_time(batched, args.repeats)
    loop_time, loop_out = best_time(per_clip, args.repeats)

    ast_diff = (ast_out[:, :frames] - batch_out).abs().max().item()
    loop_diff = (loop_out - batch_out).abs().max().item()
    print(f"ASTFeatureExtractor (numpy, per clip): {ast_time * 1000:8.1f} ms")
    print(f"KaldiFbank, one clip at a time:        {loop_time * 1000:8.1f} ms")
    print(f"KaldiFbank, batched:                   {batch_time * 1000:8.1f} ms")
    print(f"max abs diff, log-mel: batched vs ASTFeatureExtractor {ast_diff:.2e}; batched vs per clip {loop_diff:.2e}")
    ast_ratio, loop_ratio = ast_time / batch_time, loop_time / batch_time
    print(f"speed-up vs ASTFeatureExtractor: {ast_ratio:.1f}x (target >= 10x: {'met' if ast_ratio >= 10 else 'NOT met'})")
    print(f"speed-up vs per-clip loop:       {loop_ratio:.1f}x (target >= 3x: {'met' if loop_ratio >= 3 else 'NOT met'})")


if __name__ == "__main__":
    main()
