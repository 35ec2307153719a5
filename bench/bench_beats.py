"""BeatsModel eager vs SDPA attention: batch 8 x 10 s, released (iter3) architecture, random weights.

    python bench/bench_beats.py [--batch 8] [--seconds 10] [--repeats 3] [--layers 12]

Prints the time per forward of each kernel, their ratio and the max abs difference of the outputs.
Features are computed once outside the timing (the front end has its own benchmark).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from audiozoo import BeatsConfig, BeatsFeatureExtractor, BeatsModel
from timing import best_time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()

    torch.manual_seed(0)
    model = BeatsModel(BeatsConfig(num_hidden_layers=args.layers, layerdrop=0.0)).eval().to(args.device)
    rng = np.random.default_rng(0)
    clips = [(0.1 * rng.standard_normal(int(args.seconds * 16000))).astype(np.float32) for _ in range(args.batch)]
    inputs = BeatsFeatureExtractor()(clips, sampling_rate=16000, device=args.device)
    print(f"device={args.device} threads={torch.get_num_threads()} batch={args.batch} x {args.seconds:g} s "
          f"-> input {tuple(inputs['input_values'].shape)}, layers={args.layers}")

    results, outputs = {}, {}
    for attention in ("eager", "sdpa"):
        model.set_attn_implementation(attention)

        def forward(attention=attention):
            with torch.inference_mode():
                outputs[attention] = model(**inputs).last_hidden_state
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()

        results[attention] = best_time(forward, args.repeats)[0]
        print(f"{attention:>5}: {results[attention] * 1000:8.1f} ms per batch")
    difference = (outputs["eager"] - outputs["sdpa"]).abs().max().item()
    print(f"sdpa speed-up over eager: {results['eager'] / results['sdpa']:.2f}x ; max abs diff {difference:.2e}")


if __name__ == "__main__":
    main()
