"""Front ends: what the feature-extractor call users make costs on top of the bare filterbank / mel.

    python bench/bench_frontend.py [--clips 32] [--seconds 10] [--repeats 7] [--threads 1 2]
                                   [--byol-clips 100] [--skip-ast]

1. Overhead (target: call <= 1.1x bare, at every thread count). For each front end (the Kaldi fbank of BEATs,
   BYOL-A's log-mel, the four PretrainedSED front ends), a folder is saved and loaded back with
   `AutoFeatureExtractor.from_pretrained`, and `fe(list_of_clips, sampling_rate=16000)` is timed against
   - "bare": the front end's transform module (KaldiFbank, LogMelSpectrogram (ATST-Frame: its mel power),
     PasstMelSpectrogram) run on the same clips already stacked into one tensor, batched and one clip at a time
     (the faster of the two counts): call / bare is the ratio of the target, and counts the front end's own
     arithmetic after the transform (normalisation, ATST-Frame's dB scaling) as overhead;
   - "math": the whole front-end arithmetic on the stacked tensor (the transform and that arithmetic): call /
     math is what validation, padding and packing alone cost.
   The call includes everything users pay for.
2. BYOL-A with `--byol-clips` clips: the call against the whole-batch STFT path BYOL-A's front end used before
   (one reflect-padded [B, N] STFT and one mel matmul for the batch), and against one clip per call.
3. Unless --skip-ast: the batched Kaldi filterbank against transformers' ASTFeatureExtractor (numpy path) and
   against our filterbank one clip at a time, on AST's settings (hanning window), at each thread count.

Timings are medians of `--repeats` calls, the call and its baselines interleaved (the machine may be shared);
section 1 also gives the ratios of the fastest calls (what an idle machine shows).
Clips are cut from the two real recordings in ../shared/audio (resampled to 16 kHz with soxr, random offsets
and gains); seeded noise if those are absent.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile
import soxr
import torch
from timing import best_time
from transformers import ASTFeatureExtractor, AutoFeatureExtractor

import audiozoo  # noqa: F401  (registers the feature extractors with AutoFeatureExtractor)
from audiozoo.audio import KaldiFbank
from audiozoo.audio.melspec import centred_power_spectrogram
from audiozoo.models.asit.feature_extraction_asit import AsitFeatureExtractor
from audiozoo.models.atst_frame.feature_extraction_atst_frame import (
    AtstFrameFeatureExtractor,
)
from audiozoo.models.beats.feature_extraction_beats import BeatsFeatureExtractor
from audiozoo.models.byol_a.feature_extraction_byol_a import ByolAFeatureExtractor
from audiozoo.models.fpasst.feature_extraction_fpasst import PasstMelFeatureExtractor
from audiozoo.models.m2d.feature_extraction_m2d import M2dFeatureExtractor

SHARED_AUDIO = Path(__file__).resolve().parents[1].parent / "shared" / "audio"
TARGET = 1.1


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


def median_times(functions: dict, repeats: int, fastest: dict | None = None) -> dict[str, float]:
    """Median seconds of each function over `repeats` rounds, the functions interleaved, after one warm-up each
    (the fastest round of each goes into `fastest` if given: the figures of an idle machine)."""
    for function in functions.values():
        function()
    times = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    if fastest is not None:
        fastest.update({name: min(values) for name, values in times.items()})
    return {name: statistics.median(values) for name, values in times.items()}


def front_ends() -> dict[str, tuple[object, str]]:
    """name -> (feature extractor, attribute of its transform module)."""
    return {
        "fbank (BEATs)": (BeatsFeatureExtractor(), "fbank"),
        "BYOL-A v1": (ByolAFeatureExtractor.for_version(1), "melspec"),
        "SED ATST-Frame": (AtstFrameFeatureExtractor(), "transform"),
        "SED fPaSST": (PasstMelFeatureExtractor(), "transform"),
        "SED ASiT": (AsitFeatureExtractor(), "transform"),
        "SED M2D": (M2dFeatureExtractor(), "transform"),
    }


def bare_transform(fe, attribute: str):
    """The front end's transform module, called on a [B, N] tensor; ATST's front end feeds its mel power on."""
    module = getattr(fe, attribute)
    return module.mel_power if isinstance(fe, AtstFrameFeatureExtractor) else module


def front_end_math(fe):
    """[B, N] tensor -> the front end's features: the transform and the arithmetic after it, no validation."""
    if isinstance(fe, BeatsFeatureExtractor):
        return lambda batch: fe.fbank(batch, normalize=(fe.mean, fe.norm_std_factor * fe.std))
    if isinstance(fe, ByolAFeatureExtractor):
        return lambda batch: fe.melspec(batch, normalize=(fe.mean, fe.std))
    return fe.features


def overhead(clips: list[np.ndarray], threads: list[int], repeats: int) -> None:
    stacked = torch.from_numpy(np.stack(clips))
    print(f"\n1. feature-extractor call vs bare transform, {len(clips)} clips; medians of {repeats}; "
          f"target call <= {TARGET}x bare")
    print(f"{'front end':<16} {'threads':>7} {'call ms':>8} {'bare batched':>13} {'bare per clip':>14} "
          f"{'math':>6} {'call/bare':>14} {'call/math':>10} {'fastest: call/bare':>19} {'call/math':>10}")
    with tempfile.TemporaryDirectory() as folder:
        for name, (fe, attribute) in front_ends().items():
            path = Path(folder) / name.replace(" ", "_").replace("(", "").replace(")", "")
            fe.save_pretrained(path)
            loaded = AutoFeatureExtractor.from_pretrained(path)
            assert type(loaded) is type(fe), (type(loaded), type(fe))
            transform, math = bare_transform(loaded, attribute), front_end_math(loaded)
            for count in threads:
                torch.set_num_threads(count)
                fastest = {}
                times = median_times({
                    "call": lambda fe=loaded: fe(clips, sampling_rate=16000),
                    "batched": lambda bare=transform: bare(stacked),
                    "per_clip": lambda bare=transform: [bare(row[None]) for row in stacked],
                    "math": lambda function=math: function(stacked),
                }, repeats, fastest)
                fastest_bare = min(fastest["batched"], fastest["per_clip"])
                bare = min(times["batched"], times["per_clip"])
                ratio = times["call"] / bare
                print(f"{name:<16} {count:>7} {times['call'] * 1e3:>8.1f} {times['batched'] * 1e3:>13.1f} "
                      f"{times['per_clip'] * 1e3:>14.1f} {times['math'] * 1e3:>6.1f} {ratio:>5.2f}x "
                      f"{'met' if ratio <= TARGET else 'NOT met':>7} {times['call'] / times['math']:>9.2f}x "
                      f"{fastest['call'] / fastest_bare:>18.2f}x {fastest['call'] / fastest['math']:>9.2f}x")


def byol_a_batches(clips: list[np.ndarray], threads: list[int], repeats: int) -> None:
    fe = ByolAFeatureExtractor.for_version(1)
    melspec = fe.melspec
    stacked = torch.from_numpy(np.stack(clips))
    lengths = torch.full((len(clips),), stacked.shape[1])

    def whole_batch():  # the path the front end took before: one STFT and one matmul for the whole batch
        power = centred_power_spectrogram(stacked, lengths, melspec.n_fft, melspec.hop_length, melspec.win_length,
                                          melspec.window)
        mel = torch.matmul(power.transpose(-1, -2), melspec.filters).transpose(-1, -2)
        return (mel + melspec.log_offset).log()

    print(f"\n2. BYOL-A v1 front end, {len(clips)} clips; medians of {repeats}")
    reference = whole_batch()
    difference = (fe.log_mel(clips, 16000)[0] - reference).abs().max().item()
    for count in threads:
        torch.set_num_threads(count)
        times = median_times({
            "call": lambda: fe(clips, sampling_rate=16000),
            "whole": whole_batch,
            "one_per_call": lambda: [fe([clip], sampling_rate=16000) for clip in clips],
        }, max(1, repeats // 2))
        print(f"threads={count}: call {times['call'] * 1e3:.0f} ms; whole-batch STFT (previous path) "
              f"{times['whole'] * 1e3:.0f} ms ({times['whole'] / times['call']:.2f}x the call); one clip per call "
              f"{times['one_per_call'] * 1e3:.0f} ms")
    print(f"max abs diff of the log-mel, call vs whole-batch path: {difference:.2e}")


def ast_comparison(clips: list[np.ndarray], repeats: int) -> None:
    ast_fe = ASTFeatureExtractor(num_mel_bins=128, max_length=1024, do_normalize=False)
    fbank = KaldiFbank(num_mel_bins=128, window="hanning")
    stacked = torch.from_numpy(np.stack(clips))
    frames = fbank.num_frames(stacked.shape[1])
    print(f"\n3. KaldiFbank (AST settings) vs ASTFeatureExtractor, {len(clips)} clips, "
          f"threads={torch.get_num_threads()}; best of {repeats}")

    ast_time, ast_out = best_time(lambda: ast_fe(clips, sampling_rate=16000, return_tensors="pt")["input_values"],
                                  max(1, repeats // 2))

    def batched():
        with torch.inference_mode():
            return fbank(stacked)

    def per_clip():
        with torch.inference_mode():
            return torch.cat([fbank(torch.from_numpy(clip)) for clip in clips])

    batch_time, batch_out = best_time(batched, repeats)
    loop_time, loop_out = best_time(per_clip, repeats)

    ast_diff = (ast_out[:, :frames] - batch_out).abs().max().item()
    loop_diff = (loop_out - batch_out).abs().max().item()
    print(f"ASTFeatureExtractor (numpy, per clip): {ast_time * 1000:8.1f} ms")
    print(f"KaldiFbank, one clip at a time:        {loop_time * 1000:8.1f} ms")
    print(f"KaldiFbank, batched:                   {batch_time * 1000:8.1f} ms")
    print(f"max abs diff, log-mel: batched vs ASTFeatureExtractor {ast_diff:.2e}; batched vs per clip {loop_diff:.2e}")
    ast_ratio, loop_ratio = ast_time / batch_time, loop_time / batch_time
    print(f"speed-up vs ASTFeatureExtractor: {ast_ratio:.1f}x (target >= 10x: {'met' if ast_ratio >= 10 else 'NOT met'})")
    print(f"speed-up vs per-clip loop:       {loop_ratio:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--byol-clips", type=int, default=100, help="clips for section 2 (0 skips it)")
    parser.add_argument("--skip-ast", action="store_true", help="skip section 3 (ASTFeatureExtractor is slow)")
    args = parser.parse_args()

    clips, source = make_clips(args.clips, args.seconds)
    print(f"{args.clips} clips x {args.seconds:g} s at 16 kHz: {source}; threads {args.threads}")
    overhead(clips, args.threads, args.repeats)
    if args.byol_clips:
        byol_a_batches(make_clips(args.byol_clips, args.seconds)[0], args.threads, args.repeats)
    if not args.skip_ast:
        for count in args.threads:
            torch.set_num_threads(count)
            ast_comparison(clips, args.repeats)


if __name__ == "__main__":
    main()
