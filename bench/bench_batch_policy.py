"""Batch policy on the CPU: clips/s of front end + model per batch size, per family at its released size.

    python bench/bench_batch_policy.py [--families beats ast ...] [--clips 16] [--seconds 10]
                                       [--batch-sizes 1 2 4 8 16] [--repeats 3] [--threads 1 2]
                                       [--sed-minutes 3] [--sed-batch-sizes 1 8] [--skip-sed]

Every family is built at its released size (the builders of tests/released/: BEATs iter3+ AS2M fine-tuned, AST
10/10 AudioSet, EAT base fine-tuned, the PretrainedSED students ATST-Frame / fPaSST / ASiT / M2D / frame-MobileNet
1.0 with their 447-class heads; seeded random weights: speed does not depend on the values) except BYOL-A, whose
real d512 weights (tests/fixtures/parity/byola_v1_d512) are converted as tests/conftest.py's `convert_case` does.
The feature extractor is the one the conversion writes for that file. Clips are `--seconds` long, cut from the
real recordings in ../shared/audio at 16 kHz (random offsets and gains; seeded noise if they are absent).

Paths, each over the same `--clips` clips under torch.inference_mode:
- "original": the originals' scripts' loop: one clip at a time through the front end (`fe(clip)`) and the model;
- "batch B" for every B of `--batch-sizes` (and the one `audiozoo.runtime.default_batch_size(model_type, "cpu")`
  chooses): the clips in consecutive groups of B (they are of equal length, so sorting by length changes nothing),
  `model(**fe(group))` per group, as the dataset runner and the pipelines do.
The paths alternate within every repeat (the machine may be shared); each is timed `--repeats` times after a
warm-up call at its batch size. The table gives clips/s of the median (and of the fastest) repeat, the ratios
chosen / original and chosen / best batch (medians), and the max abs difference of every batched output from the
one-at-a-time output (logits, or the pooled embedding for BYOL-A).

Unless --skip-sed: frame-MobileNet 1.0 through the sound-event-detection pipeline over `--sed-minutes` of real
audio with `chunk_batch_size` each of `--sed-batch-sizes` and the pipeline's default (None), against the original
loop of bench/bench_sed.py (one 10 s window at a time, scipy's median filter, the same thresholding).

`--threads 1 2` runs everything at each thread count (torch.set_num_threads).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
import soxr
import torch
from transformers import AutoFeatureExtractor, AutoModel, pipeline

import audiozoo  # noqa: F401  (registers the models and the pipelines)
from audiozoo.runtime import default_batch_size

REPO = Path(__file__).resolve().parents[1]
SHARED_AUDIO = REPO.parent / "shared" / "audio"
sys.path.insert(0, str(REPO / "tests"))
from conftest import convert_case, load_case  # noqa: E402
from released import beats, eat_byol_a_frame_mn, timm_vits  # noqa: E402

RELEASES = {release.name: release for release in beats.RELEASES + timm_vits.RELEASES + eat_byol_a_frame_mn.RELEASES}


@dataclass
class Family:
    model: torch.nn.Module
    feature_extractor: object
    what: str


def _release(name: str) -> torch.nn.Module:
    return RELEASES[name].build().eval()


def build_family(key: str, folder: Path) -> Family:
    """The model at its released size and its feature extractor, as the conversion writes them."""
    if key == "beats":
        from audiozoo.models.beats import BeatsFeatureExtractor

        name = "beats-iter3-plus-as2m-finetuned-as2m-cpt1"
        return Family(_release(name), BeatsFeatureExtractor(), name)
    if key == "ast":
        from audiozoo.models.ast import AST_PRESETS, AstFeatureExtractor

        name = "ast-audioset-10-10-0.4593"
        preset = AST_PRESETS["audioset"]
        model = _release(name)
        return Family(model, AstFeatureExtractor(mean=preset["mean"], std=preset["std"],
                                                 max_length=model.config.max_length), name)
    if key == "eat":
        from audiozoo.models.eat import EAT_PRESETS, EatFeatureExtractor

        name = "eat-base-epoch30-finetuned-as2m"
        preset = EAT_PRESETS["audioset"]
        return Family(_release(name), EatFeatureExtractor(mean=preset["mean"], std=preset["std"],
                                                          max_length=preset["max_length"]), name)
    if key == "byol-a":
        converted = convert_case(load_case("byola_v1_d512"), folder / "byola_v1_d512")
        return Family(AutoModel.from_pretrained(converted, dtype=torch.float32).eval(),
                      AutoFeatureExtractor.from_pretrained(converted), "byol-a-v1-d512 (real weights)")
    sed = {
        "atst-frame": ("pretrainedsed-atst-frame-strong", "atst_frame", "AtstFrameFeatureExtractor", {}),
        "fpasst": ("pretrainedsed-fpasst-strong", "fpasst", "PasstMelFeatureExtractor", {"periodic_window": True}),
        "asit": ("pretrainedsed-asit-strong", "asit", "AsitFeatureExtractor", {}),
        "m2d": ("pretrainedsed-m2d-strong", "m2d", "M2dFeatureExtractor", {}),
        "frame-mn": ("pretrainedsed-frame-mn10-strong", "fpasst", "PasstMelFeatureExtractor",
                     {"periodic_window": False}),
    }
    if key in sed:
        import importlib

        name, package, class_name, options = sed[key]
        extractor = getattr(importlib.import_module(f"audiozoo.models.{package}"), class_name)(**options)
        return Family(_release(name), extractor, name)
    raise ValueError(f"unknown family {key!r}")


FAMILY_KEYS = ("beats", "ast", "eat", "byol-a", "atst-frame", "fpasst", "asit", "m2d", "frame-mn")


def make_clips(count: int, seconds: float, rate: int = 16000) -> tuple[list[np.ndarray], str]:
    """`count` clips of `seconds` cut from the shared recordings (resampled to `rate`), random offsets and gains."""
    rng = np.random.default_rng(0)
    length = int(seconds * rate)
    sources = []
    for path in sorted(SHARED_AUDIO.glob("*.wav")):
        samples, source_rate = soundfile.read(path, dtype="float32", always_2d=True)
        sources.append(soxr.resample(samples.mean(axis=1), source_rate, rate, "HQ").astype(np.float32))
    if not sources:
        return [(0.1 * rng.standard_normal(length)).astype(np.float32) for _ in range(count)], "seeded noise"
    clips = []
    for index in range(count):
        source = sources[index % len(sources)]
        source = np.tile(source, length // source.size + 2)  # any offset leaves `length` samples
        offset = int(rng.integers(0, source.size - length))
        clips.append((source[offset:offset + length] * rng.uniform(0.3, 1.0)).astype(np.float32))
    return clips, f"real audio ({', '.join(path.name for path in sorted(SHARED_AUDIO.glob('*.wav')))})"


def compared(outputs) -> torch.Tensor:
    """What is compared between paths: the logits, or the pooled embedding, or the last hidden state."""
    for name in ("logits", "pooler_output", "last_hidden_state"):
        value = getattr(outputs, name, None)
        if value is not None:
            return value
    return outputs[0]


def original_loop(family: Family, clips: list[np.ndarray]) -> torch.Tensor:
    fe, model, rate = family.feature_extractor, family.model, family.feature_extractor.sampling_rate
    with torch.inference_mode():
        return torch.cat([compared(model(**fe(clip, sampling_rate=rate, return_tensors="pt"))) for clip in clips])


def batched(family: Family, clips: list[np.ndarray], batch_size: int) -> torch.Tensor:
    fe, model, rate = family.feature_extractor, family.model, family.feature_extractor.sampling_rate
    order = sorted(range(len(clips)), key=lambda index: clips[index].size)  # by length, as the runner does
    outputs: list[torch.Tensor | None] = [None] * len(clips)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            group = order[start:start + batch_size]
            result = compared(model(**fe([clips[index] for index in group], sampling_rate=rate,
                                         return_tensors="pt")))
            for position, index in enumerate(group):
                outputs[index] = result[position:position + 1]
    return torch.cat(outputs)


def alternate(paths: dict[str, Callable[[], object]], repeats: int,
              warm_ups: dict[str, Callable[[], object]] | None = None) -> tuple[dict, dict, dict]:
    """Each path's warm-up (default: the path itself), then `repeats` rounds with the paths interleaved: (median
    seconds, fastest seconds, last result) per path."""
    for name, function in paths.items():
        (warm_ups or {}).get(name, function)()
    times, results = {name: [] for name in paths}, {}
    for _ in range(repeats):
        for name, function in paths.items():
            start = time.perf_counter()
            results[name] = function()
            times[name].append(time.perf_counter() - start)
    return ({name: statistics.median(values) for name, values in times.items()},
            {name: min(values) for name, values in times.items()}, results)


def bench_family(key: str, family: Family, clips: list[np.ndarray], batch_sizes: list[int],
                 repeats: int) -> dict:
    chosen = default_batch_size(family.model.config.model_type, "cpu")
    sizes = sorted(set(batch_sizes) | {chosen})
    paths = {"original": lambda: original_loop(family, clips)}
    paths.update({f"batch {size}": (lambda size=size: batched(family, clips, size)) for size in sizes})
    # warm-up: one call at each path's batch size (the first call of a shape sets up its kernels)
    warm_ups = {"original": lambda: original_loop(family, clips[:1])}
    warm_ups.update({f"batch {size}": (lambda size=size: batched(family, clips[:size], size)) for size in sizes})
    median, fastest, results = alternate(paths, repeats, warm_ups)
    reference = results["original"]
    rate = {name: len(clips) / seconds for name, seconds in median.items()}
    fastest_rate = {name: len(clips) / seconds for name, seconds in fastest.items()}
    best = max(sizes, key=lambda size: rate[f"batch {size}"])
    difference = max(float((results[f"batch {size}"] - reference).abs().max()) for size in sizes)
    scale = float(reference.abs().max())
    return {"key": key, "chosen": chosen, "best": best, "rate": rate, "fastest": fastest_rate, "sizes": sizes,
            "difference": difference, "scale": scale}


def print_table(rows: list[dict], batch_sizes: list[int], threads: int, clips: int, seconds: float) -> None:
    print(f"\nthreads={threads}: clips/s (median of the repeats; fastest in brackets), {clips} x {seconds:g} s clips")
    header = f"{'family':<11} {'original':>15}" + "".join(f" {f'batch {size}':>15}" for size in batch_sizes)
    print(header + f" {'chosen':>6} {'best':>5} {'chosen/orig':>11} {'chosen/best':>11} {'max |diff|':>12}")
    for row in rows:
        cells = [f"{row['rate']['original']:7.2f} [{row['fastest']['original']:5.2f}]"]
        for size in batch_sizes:
            name = f"batch {size}"
            cells.append(f"{row['rate'][name]:7.2f} [{row['fastest'][name]:5.2f}]" if name in row["rate"] else "")
        chosen, best = row["rate"][f"batch {row['chosen']}"], row["rate"][f"batch {row['best']}"]
        print(f"{row['key']:<11} " + " ".join(f"{cell:>15}" for cell in cells)
              + f" {row['chosen']:>6} {row['best']:>5} {chosen / row['rate']['original']:>10.2f}x"
              + f" {chosen / best:>10.2f}x {row['difference']:>8.1e} (of {row['scale']:.1e})")


def bench_sed(minutes: float, batch_sizes: list[int], repeats: int, folder: Path) -> None:
    """frame-MobileNet 1.0 through the SED pipeline, chunk_batch_size per size and the default, vs the original
    loop of bench_sed.py."""
    from bench_sed import one_window_at_a_time, recording

    family = build_family("frame-mn", folder)
    path = folder / "frame_mn10"
    family.model.save_pretrained(path)
    family.feature_extractor.save_pretrained(path)
    detector = pipeline("sound-event-detection", model=str(path), dtype=torch.float32)
    waveform = recording(minutes)
    default = default_batch_size(detector.model.config.model_type, "cpu")

    def detect(size):
        with torch.inference_mode():
            return detector(waveform, sampling_rate=16000, chunk_batch_size=size, return_frame_probabilities=True)

    paths = {"original loop": lambda: one_window_at_a_time(detector, waveform)}
    paths.update({f"chunk_batch_size={size}": (lambda size=size: detect(size)) for size in batch_sizes})
    paths[f"default (None -> {default})"] = lambda: detect(None)
    median, fastest, results = alternate(paths, repeats)
    reference = results["original loop"][0]
    print(f"\nSED: frame-MobileNet 1.0 (released size, random weights), {waveform.size / 16000 / 60:g} min of real "
          f"audio, threads={torch.get_num_threads()}; seconds (median of {repeats}, fastest), x original")
    for name in paths:
        difference = "" if name == "original loop" else \
            f"  max |diff| of frame probabilities {float(np.abs(results[name]['frame_probabilities'] - reference).max()):.1e}"
        print(f"  {name:<28} {median[name]:7.2f} s [{fastest[name]:6.2f}]  "
              f"{median['original loop'] / median[name]:5.2f}x{difference}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", nargs="+", default=list(FAMILY_KEYS), choices=FAMILY_KEYS)
    parser.add_argument("--clips", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="+", default=[torch.get_num_threads()])
    parser.add_argument("--sed-minutes", type=float, default=3.0)
    parser.add_argument("--sed-batch-sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--skip-sed", action="store_true")
    args = parser.parse_args()

    clips, source = make_clips(args.clips, args.seconds)
    print(f"{args.clips} clips of {args.seconds:g} s, {source}; batch sizes {args.batch_sizes}; "
          f"{args.repeats} repeats, paths interleaved; threads {args.threads}")
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        rows = {threads: [] for threads in args.threads}
        for key in args.families:  # one model in memory at a time
            family = build_family(key, folder)
            for threads in args.threads:
                torch.set_num_threads(threads)
                rows[threads].append(bench_family(key, family, clips, args.batch_sizes, args.repeats))
            print(f"  {key}: {family.what}, {type(family.model).__name__} done", flush=True)
            del family
        for threads in args.threads:
            shown = sorted(set(args.batch_sizes) | {row["chosen"] for row in rows[threads]})
            print_table(rows[threads], shown, threads, args.clips, args.seconds)
        if not args.skip_sed:
            for threads in args.threads:
                torch.set_num_threads(threads)
                bench_sed(args.sed_minutes, args.sed_batch_sizes, args.repeats, folder)


if __name__ == "__main__":
    main()
