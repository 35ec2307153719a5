"""BeatsModel on long clips: time and peak memory per forward, eager vs SDPA, the blocked gated bias vs the previous one.

    python bench/bench_beats.py [--seconds 10 30 60] [--batch 1] [--repeats 3] [--layers 12] [--threads N]
                                [--device cpu|cuda] [--paths blocked previous]

Released (iter3) architecture, random weights, `--batch` clips of `--seconds` each (the second half of the
batch 20 % shorter, so that keys are masked as in a padded batch). Two computations of the gated relative
position bias, in the same run:
- "blocked" (the library): the bias kept as its 2L - 1 values per key - query offset, gated for a block of query
  rows at a time (never a [B, H, L, L] tensor);
- "previous" (the code before issue 15, kept verbatim in tests/test_beats_attention_blocks.py and patched in
  here): a [1, H, L, L] per-pair lookup once per forward, gated as a whole [B, H, L, L] tensor in every layer.
Every (seconds, path, attention) runs in its own process, so that its peak memory can be read: the peak resident
memory (CPU; VmHWM reset after loading) or the peak allocated memory (CUDA) of the forwards, above what the
process held before them. Times are medians of `--repeats` forwards after a 1 s warm-up forward. Prints ratios
previous / blocked and eager / SDPA, and the max abs difference of the outputs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

TESTS = Path(__file__).resolve().parents[1] / "tests"


def peak_reset() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # Linux: resets VmHWM, the peak resident memory
    except OSError:
        pass


def resident() -> tuple[int, int]:
    """(current, peak) resident bytes of this process."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) * 1024, int(fields["VmHWM"].split()[0]) * 1024


def worker(args) -> None:
    """One configuration: prints a JSON line (times, peak memory) and saves the output to --output."""
    from audiozoo import BeatsConfig, BeatsFeatureExtractor, BeatsModel

    if args.path == "previous":
        sys.path.insert(0, str(TESTS))
        from test_beats_attention_blocks import previous_attention, previous_bias

        from audiozoo.models.beats.modeling_beats import (
            BeatsRelativePositionBias,
            BeatsSelfAttention,
        )

        BeatsRelativePositionBias.per_offset = previous_bias
        BeatsSelfAttention.forward = previous_attention
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = BeatsModel(BeatsConfig(num_hidden_layers=args.layers, layerdrop=0.0)).eval().to(args.device)
    model.set_attn_implementation(args.attention)
    rng = np.random.default_rng(0)
    lengths = [int(args.seconds[0] * 16000 * (1.0 if index < (args.batch + 1) // 2 else 0.8))
               for index in range(args.batch)]
    clips = [(0.1 * rng.standard_normal(length)).astype(np.float32) for length in lengths]
    extractor = BeatsFeatureExtractor()
    inputs = extractor(clips, sampling_rate=16000, device=args.device)
    cuda = args.device.startswith("cuda")

    def forward(batch):
        with torch.inference_mode():
            output = model(**batch).last_hidden_state
        if cuda:
            torch.cuda.synchronize()
        return output

    forward(extractor([clip[:16000] for clip in clips], sampling_rate=16000, device=args.device))  # warm-up
    if cuda:
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:
        peak_reset()
        before = resident()[0]
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        output = forward(inputs)
        times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated() if cuda else resident()[1]
    torch.save(output.cpu(), args.output)
    print(json.dumps({"median_s": statistics.median(times), "min_s": min(times), "peak_bytes": peak - before,
                      "patches": output.shape[1], "threads": torch.get_num_threads()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, nargs="+", default=[10.0, 30.0, 60.0])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--paths", nargs="+", default=["blocked", "previous"], choices=["blocked", "previous"])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--attention", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    print(f"device={args.device} batch={args.batch} layers={args.layers} repeats={args.repeats} "
          f"threads={args.threads or torch.get_num_threads()}; medians, peak memory above the loaded model")
    print(f"{'seconds':>7} {'patches':>7} {'path':>9} {'attention':>9} {'median s':>9} {'min s':>7} {'peak MiB':>9}")
    with tempfile.TemporaryDirectory() as folder:
        for seconds in args.seconds:
            results, outputs = {}, {}
            for path in args.paths:
                for attention in ("eager", "sdpa"):
                    output = Path(folder) / f"{seconds}_{path}_{attention}.pt"
                    command = [sys.executable, __file__, "--worker", "--path", path, "--attention", attention,
                               "--output", str(output), "--seconds", str(seconds), "--batch", str(args.batch),
                               "--repeats", str(args.repeats), "--layers", str(args.layers),
                               "--threads", str(args.threads), "--device", args.device]
                    run = subprocess.run(command, capture_output=True, text=True, check=False)
                    if run.returncode:
                        print(f"{seconds:>7g} {path:>9} {attention:>9}: failed\n{run.stderr[-2000:]}")
                        continue
                    result = json.loads(run.stdout.strip().splitlines()[-1])
                    results[path, attention] = result
                    outputs[path, attention] = torch.load(output)
                    print(f"{seconds:>7g} {result['patches']:>7} {path:>9} {attention:>9} {result['median_s']:>9.2f} "
                          f"{result['min_s']:>7.2f} {result['peak_bytes'] / 2**20:>9.0f}", flush=True)
            for attention in ("eager", "sdpa"):
                if ("blocked", attention) in results and ("previous", attention) in results:
                    new, old = results["blocked", attention], results["previous", attention]
                    difference = (outputs["blocked", attention] - outputs["previous", attention]).abs().max().item()
                    print(f"{seconds:>7g} s {attention}: previous / blocked time {old['median_s'] / new['median_s']:.2f}x, "
                          f"peak memory {old['peak_bytes'] / max(new['peak_bytes'], 1):.1f}x; "
                          f"max abs diff {difference:.1e}")
            for path in args.paths:
                if (path, "eager") in results and (path, "sdpa") in results:
                    eager, sdpa = results[path, "eager"], results[path, "sdpa"]
                    difference = (outputs[path, "eager"] - outputs[path, "sdpa"]).abs().max().item()
                    print(f"{seconds:>7g} s {path}: sdpa speed-up over eager {eager['median_s'] / sdpa['median_s']:.2f}x; "
                          f"max abs diff {difference:.1e}")


if __name__ == "__main__":
    main()
