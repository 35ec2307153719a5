"""Copy a trained drums run into the package as the default model, with a model card stating its accuracy.

    python examples/drums/install_default_model.py runs/drums
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TARGET = REPO / "src" / "audiozoo" / "default_model"
FILES = ("config.json", "model.safetensors", "preprocessor_config.json")

CARD = """# audiozoo default model: drum-hit classifier

A small BYOL-A v1 network (conv 32 channels, 256-d embedding) trained from scratch by
`bash examples/drums/train.sh` on 192 real one-shot drum recordings (the drums set of examples/drums/README.md:
hydrogen-drumkits and avldrums.lv2 samples, GPL-2 / GPL-2+ / CC-BY-SA-3.0-US / CC-BY-3.0 per clip, listed in its
details.csv).
Classes: {labels}.

Split by drum kit (seed 42), so the test kits are unseen: {sizes}.
Test accuracy **{accuracy:.3f}** (chance, the majority class: {chance:.3f}); best validation accuracy
{valid:.3f} at epoch {epoch}; training took {seconds:.0f} s on 2 CPU cores.

A demonstration that the training loop learns on real audio, not a general drum classifier: ten kits are
few, and the clips are isolated hits.
"""


def main(run: str) -> None:
    run_dir = Path(run)
    results = json.loads((run_dir / "results.json").read_text())
    config = json.loads((run_dir / "config.json").read_text())
    TARGET.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        shutil.copy2(run_dir / name, TARGET / name)
    sizes = " / ".join(f"{count} {split}" for split, count in results["sizes"].items()) + " clips"
    card = CARD.format(labels=", ".join(config["id2label"][str(i)] for i in range(len(config["id2label"]))),
                       sizes=sizes, accuracy=results["test"]["accuracy"], chance=results["test"]["chance_accuracy"],
                       valid=results["best_metric"], epoch=results["best_epoch"], seconds=results["seconds"])
    (TARGET / "README.md").write_text(card, encoding="utf-8")
    print(f"installed {run_dir} as {TARGET} (test accuracy {results['test']['accuracy']:.3f})")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/drums")
