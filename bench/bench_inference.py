"""The dataset-scale runner vs a one-file-at-a-time loop: clip embeddings of the same files, clips per second.

    python bench/bench_inference.py [--case byola_v1_d512] [--clips 64] [--seconds 10] [--batch-size 16]
                                    [--num-workers 2] [--task embed|predict]

The files are real audio (the two shared 32 kHz clips, reversed and re-gained copies; a generated tone where they are
missing) written as WAV at 32 kHz, so both paths decode and resample (soundfile + soxr). The model is a parity case
converted as the tests do (byola_v1_d512 is BYOL-A at its released size). The loop reads a file, computes its
features and runs the model, one file after the other, in this process. The runner (`run_inference`) decodes in
`--num-workers` DataLoader processes, batches clips of equal length and writes a merged HDF5 file. Both timings
include loading the model; the runner's also its shard and merge writes. Prints clips/s of each, their ratio and the
max abs difference of the embeddings.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import soundfile
import torch
from transformers import AutoFeatureExtractor, AutoModel, AutoModelForAudioClassification

import audiozoo  # noqa: F401  (registers the models)
from audiozoo.audio.io import resample

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from conftest import convert_case, load_case  # noqa: E402

from audiozoo.inference.runner import run_inference  # noqa: E402


def write_clips(folder: Path, count: int, seconds: float) -> Path:
    """`count` clips of `seconds` at 32 kHz and a manifest listing them."""
    sources = [soundfile.read(path, dtype="float32", always_2d=True) for path in
               sorted((REPO.parent / "shared" / "audio").glob("*.wav"))]
    pieces = [(samples.mean(axis=1), rate) for samples, rate in sources]
    if not pieces:
        time_axis = np.arange(int(seconds * 32000)) / 32000
        pieces = [((0.3 * np.sin(2 * np.pi * 440 * time_axis * (1 + 0.3 * time_axis))).astype(np.float32), 32000)]
    rng = np.random.default_rng(0)
    rows = ["file"]
    for index in range(count):
        samples, rate = pieces[index % len(pieces)]
        samples = samples if rate == 32000 else resample(samples, rate, 32000)
        samples = samples[::-1] if (index // len(pieces)) % 2 else samples
        length = int(seconds * 32000)
        clip = np.resize(samples, length) * rng.uniform(0.5, 1.0)
        soundfile.write(folder / f"clip_{index:04d}.wav", clip.astype(np.float32), 32000)
        rows.append(f"clip_{index:04d}.wav")
    manifest = folder / "clips.csv"
    manifest.write_text("\n".join(rows) + "\n")
    return manifest


def one_file_at_a_time(model_folder: str, files: list[Path], task: str) -> np.ndarray:
    extractor = AutoFeatureExtractor.from_pretrained(model_folder)
    auto = AutoModel if task == "embed" else AutoModelForAudioClassification
    model = auto.from_pretrained(model_folder, dtype=torch.float32).eval()
    outputs = []
    with torch.inference_mode():
        for path in files:
            samples, rate = soundfile.read(path, dtype="float32")
            samples = resample(samples, rate, extractor.sampling_rate)
            result = model(**extractor([samples], sampling_rate=extractor.sampling_rate, return_tensors="pt"))
            if task == "predict":
                value = result.logits.sigmoid()
            else:  # the pooled output where the model pools, else the mean of its time steps (one clip: no mask)
                pooled = getattr(result, "pooler_output", None)
                value = pooled if pooled is not None else result.last_hidden_state.mean(dim=1)
            outputs.append(value[0].numpy())
    return np.stack(outputs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", default="byola_v1_d512", help="a parity case with a converter (tests/conftest.py)")
    parser.add_argument("--clips", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--num-workers", type=int, default=2)
    parser.add_argument("--task", choices=("embed", "predict"), default="embed")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        model_folder = str(convert_case(load_case(args.case), folder / "model"))
        (folder / "data").mkdir()
        manifest = write_clips(folder / "data", args.clips, args.seconds)
        files = sorted((folder / "data").glob("*.wav"))
        print(f"{args.case}; {args.clips} clips of {args.seconds:g} s at 32 kHz (resampled to the model's rate); "
              f"torch threads={torch.get_num_threads()}; runner: batch {args.batch_size}, "
              f"{args.num_workers} decoding workers, 1 process")

        start = time.perf_counter()
        reference = one_file_at_a_time(model_folder, files, args.task)
        loop_seconds = time.perf_counter() - start

        start = time.perf_counter()
        output = run_inference(args.task, manifest, folder / "out.h5", model=model_folder, batch_size=args.batch_size,
                               num_workers=args.num_workers, shard_size=max(args.batch_size, 32), progress=False)
        runner_seconds = time.perf_counter() - start
        with h5py.File(output, "r") as handle:
            ours = handle["embeddings" if args.task == "embed" else "probabilities"][:]

        loop_rate, runner_rate = args.clips / loop_seconds, args.clips / runner_seconds
        print(f"one file at a time: {loop_seconds:7.2f} s  {loop_rate:7.1f} clips/s")
        print(f"runner:             {runner_seconds:7.2f} s  {runner_rate:7.1f} clips/s  "
              f"({runner_rate / loop_rate:.2f}x)")
        print(f"max abs difference: {np.abs(ours - reference).max():.2e}")


if __name__ == "__main__":
    main()
