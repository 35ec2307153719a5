"""Start-up of the `audiozoo` command: how long a fresh process takes to answer, against `python -c pass`.

    python bench/bench_startup.py [--repeats 5]

Every case runs in a new process (nothing is cached in the interpreter; the OS file cache is warm after the
first run), and the median of `--repeats` runs is printed with its ratio to `python -c pass` measured in the same
run. The command line parses and checks its arguments and input files before it imports torch or transformers,
so `--help`, a usage error and a missing input file should cost little more than the interpreter; `import
audiozoo` (every model class registered with transformers) is the cost the command defers. The machine may be
shared: run it a few times and read the lowest figures.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def command_path() -> str:
    """The `audiozoo` console script next to this interpreter (the venv's), else the one on PATH."""
    beside = Path(sys.executable).with_name("audiozoo")
    found = str(beside) if beside.is_file() else shutil.which("audiozoo")
    if found is None:
        raise SystemExit("the audiozoo command is not installed (pip install -e .)")
    return found


def cases(audiozoo: str, missing: str) -> list[tuple[str, list[str], int]]:
    """(name, argv, expected exit status)."""
    return [
        ("python -c pass", [sys.executable, "-c", "pass"], 0),
        ("audiozoo --help", [audiozoo, "--help"], 0),
        ("usage error (audiozoo classify)", [audiozoo, "classify"], 2),
        ("audiozoo classify missing.wav", [audiozoo, "classify", missing], 1),
        ('python -c "import audiozoo"', [sys.executable, "-c", "import audiozoo"], 0),
    ]


def median_seconds(argv: list[str], expected: int, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
        times.append(time.perf_counter() - start)
        if done.returncode != expected:
            raise SystemExit(f"{' '.join(argv)} exited with {done.returncode}, expected {expected}:\n"
                             f"{done.stderr.decode(errors='replace')}")
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="fresh processes per case (median reported)")
    args = parser.parse_args()
    audiozoo = command_path()
    with tempfile.TemporaryDirectory() as folder:
        missing = str(Path(folder) / "missing.wav")
        results = []
        for name, argv, expected in cases(audiozoo, missing):
            median_seconds(argv, expected, 1)  # warm the file cache
            results.append((name, median_seconds(argv, expected, args.repeats)))
    baseline = results[0][1]
    print(f"process start-up, median of {args.repeats} fresh processes ({os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f})")
    for name, seconds in results:
        print(f"  {name:<34} {seconds:7.3f} s  {seconds / baseline:7.1f} x python -c pass")
    help_seconds = dict(results)["audiozoo --help"]
    print(f"audiozoo --help: {help_seconds:.3f} s ({'under' if help_seconds < 1 else 'OVER'} the 1 s target)")


if __name__ == "__main__":
    main()
