"""`audiozoo` command line: classify, detect, embed, probe and convert.

    audiozoo classify FILE... --model DIR_OR_HUB_ID [--top-k K]
    audiozoo detect FILE... --model DIR_OR_HUB_ID [--threshold T...] [--median-window N] [--tsv X.tsv] [--plot X.png]
    audiozoo embed FILE... --model DIR_OR_HUB_ID --output X.npy|X.safetensors [--level clip|frame]
    audiozoo probe --model DIR_OR_HUB_ID --data MANIFEST.csv
    audiozoo finetune --data MANIFEST.csv --model DIR | --config CONFIG.json --output_dir OUT [...]
    audiozoo pretrain {eat,byol_a,beats,beats_tokenizer} --data DIR_OR_MANIFEST (--config CONFIG.json | --model DIR) --output_dir OUT
    audiozoo distill --data MANIFEST.csv --events EVENTS.tsv --model DIR --pseudo_labels X.h5 | --teachers DIR... --output_dir OUT
    audiozoo convert beats --checkpoint_path ORIG.pt --pytorch_dump_folder_path OUT [--push_to_hub REPO]
    audiozoo convert ast --checkpoint_path audioset_10_10_0.4593.pth --pytorch_dump_folder_path OUT [--dataset ...]
    audiozoo convert eat --checkpoint_path EAT-base_epoch30_ft_AS2M.pt --pytorch_dump_folder_path OUT
    audiozoo convert byol_a --checkpoint_path AudioNTT2020-BYOLA-64x96d2048.pth --pytorch_dump_folder_path OUT
    audiozoo convert pretrained_sed --checkpoint_path ATST-F_strong_1.pt --model_name ATST-F --pytorch_dump_folder_path OUT
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

import numpy as np
import torch

from .conversion.arguments import CONVERSION_COMMANDS, conversion_options
from .families import CONVERSIONS
from .training.options import FinetuneArgs, add_distill_arguments, add_finetune_arguments


# `audiozoo pretrain <recipe>`: (recipe, module in audiozoo.training, argument adder, entry point, help)
PRETRAIN_RECIPES = [
    ("eat", "pretrain_eat", "add_arguments", "main",
     "EAT's utterance-frame objective (EMA teacher, inverse block masks, CNN decoder)"),
    ("byol_a", "pretrain_byol_a", "add_arguments", "main",
     "BYOL-A (v1/v2 augmentation chains, projector/predictor, EMA target) on unlabelled audio"),
    ("beats", "pretrain_beats", "add_arguments", "main",
     "BEATs masked patch prediction of frozen-tokenizer labels (random projection for iteration 1)"),
    ("beats_tokenizer", "pretrain_beats_tokenizer", "add_tokenizer_arguments", "main_tokenizer",
     "BEATs acoustic tokenizer trained by distillation from a BEATs teacher"),
]


def _add_inference_arguments(parser: argparse.ArgumentParser, model_required: bool = True) -> None:
    parser.add_argument("files", nargs="+", help="audio files (wav, flac, ogg, mp3); any rate, any channels")
    parser.add_argument("--model", required=model_required, default=None,
                        help="converted model folder or Hugging Face Hub id"
                        + ("" if model_required else " (default: the bundled drum-hit classifier)"))
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")


def classify(args: argparse.Namespace) -> int:
    """Print the top labels of each file (one clip at a time, so results never depend on batch padding)."""
    from transformers import pipeline

    if args.model is None:
        from .default_model import default_model_path

        args.model = str(default_model_path())
    classifier = pipeline("audio-classification", model=args.model, device=args.device, dtype=torch.float32)
    results = {}
    for path in args.files:
        scores = classifier(path, top_k=args.top_k)
        results[path] = scores
        if not args.json:
            print(path)
            for entry in scores:
                print(f"  {entry['score']:.4f}  {entry['label']}")
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


def embed(args: argparse.Namespace) -> int:
    """Write clip embeddings [N, C] (the model's pooled output, else the mean of its valid tokens) or per-file
    frame embeddings [T, C] (the model's per-time-step features)."""
    from .inference.embeddings import embed_audio, load_encoder

    output = Path(args.output)
    if output.suffix not in (".npy", ".safetensors"):
        raise SystemExit(f"--output must end in .npy or .safetensors, got {output.name}")
    feature_extractor, model = load_encoder(args.model, args.device)
    embeddings = [embed_audio(feature_extractor, model, path, args.level, args.device) for path in args.files]

    names = [str(path) for path in args.files]
    if output.suffix == ".safetensors":
        from safetensors.numpy import save_file

        if args.level == "clip":
            tensors = {"embeddings": np.stack(embeddings)}
        else:
            tensors = {f"frames_{index}": frames for index, frames in enumerate(embeddings)}
        metadata = {"files": json.dumps(names), "level": args.level, "model": str(args.model)}
        if args.level == "frame":
            metadata["frame_rate"] = str(model.config.frame_rate)
        save_file(tensors, str(output), metadata=metadata)
    else:
        shapes = {item.shape for item in embeddings}
        if len(shapes) != 1:
            raise SystemExit(
                f"frame embeddings of different lengths {sorted(shapes)} cannot go in one .npy; use .safetensors"
            )
        np.save(output, np.stack(embeddings))
    print(f"wrote {len(embeddings)} {args.level} embeddings of shape {embeddings[0].shape} to {output}")
    return 0


def _parse_per_class(values: list[str] | None, cast) -> object:
    """--threshold 0.5 | --threshold 0.3 0.5 (several) | --threshold Speech=0.7 (per class, others default)."""
    if not values:
        return None
    if any("=" in value for value in values):
        named = {}
        for value in values:
            if "=" not in value:
                raise SystemExit(f"mix of named and plain values: {values}; use LABEL=VALUE for every entry")
            label, number = value.rsplit("=", 1)
            named[label] = cast(number)
        return named
    numbers = [cast(value) for value in values]
    return numbers[0] if len(numbers) == 1 else numbers


def detect(args: argparse.Namespace) -> int:
    """Print the sound events of each file; optionally write a DESED-style TSV and an event-roll plot."""
    from transformers import pipeline

    from .pipelines.audio_input import decode_audio_input
    from .pipelines.sound_event_detection import per_class_values
    from .sed.postprocessing import write_events_tsv

    detector = pipeline("sound-event-detection", model=args.model, device=args.device, dtype=torch.float32)
    labels = [detector.model.config.id2label[index] for index in range(len(detector.model.config.id2label))]
    threshold = _parse_per_class(args.threshold, float)
    threshold = 0.5 if threshold is None else per_class_values(threshold, labels, 0.5)
    several = isinstance(threshold, list) and len(threshold) != len(labels)
    options = {"thresholds": threshold} if several else {"threshold": threshold}
    median_window = _parse_per_class(args.median_window, int)
    median_window = 9 if median_window is None else per_class_values(median_window, labels, 9)
    if several and (args.tsv or args.plot):
        raise SystemExit("--tsv and --plot take one threshold (or one per class), not several")
    if args.plot and len(args.files) != 1:
        raise SystemExit(f"--plot draws one file; got {len(args.files)}")
    results = {}
    for path in args.files:
        events = detector(path, median_window=median_window, chunk_batch_size=args.chunk_batch_size, **options)
        results[str(path)] = events
        if not args.json:
            print(path)
            groups = events.items() if isinstance(events, dict) else [(None, events)]
            for value, group in groups:
                if value is not None:
                    print(f"  threshold {value:g}:")
                for event in group:
                    print(f"  {event['onset']:8.2f} {event['offset']:8.2f}  {event['score']:.3f}  {event['label']}")
                if not group:
                    print("  (no events above the threshold)")
    if args.json:
        print(json.dumps(results, indent=2))
    if args.tsv:
        write_events_tsv(args.tsv, {Path(path).name: events for path, events in results.items()})
        print(f"wrote {sum(len(e) for e in results.values())} events to {args.tsv}")
    if args.plot:
        from .sed.plot import plot_events

        path = args.files[0]
        rate = detector.feature_extractor.sampling_rate
        plot_events(decode_audio_input(path, rate), rate, results[str(path)], args.plot, title=Path(path).name)
        print(f"wrote {args.plot}")
    return 0


def finetune(args: argparse.Namespace) -> int:
    """Supervised training of any model of the package (see audiozoo.training.finetune)."""
    from .training.finetune import run_finetune

    values = {key: value for key, value in vars(args).items() if key in FinetuneArgs.__dataclass_fields__}
    result = run_finetune(FinetuneArgs(**values))
    if result.test:
        print("test " + ", ".join(f"{key} {value:.4f}" for key, value in result.test.items()))
    print(f"best epoch {result.best_epoch} ({result.metric} {result.best_metric}); model in {result.output_dir}; "
          f"{result.seconds:.1f} s")
    return 0


def distill(args: argparse.Namespace) -> int:
    """Knowledge distillation of a frame classifier (see audiozoo.training.distill)."""
    from .training.distill import main

    return main(args)


def probe(args: argparse.Namespace) -> int:
    """Linear evaluation of a frozen encoder on a labelled manifest; prints the accuracies."""
    from .training.probe import run_probe

    result = run_probe(args.model, args.data, args.device, args.seed)
    print(f"splits: {result.sizes}; classes: {len(result.labels)}; probe trained {result.epochs} epochs")
    print(f"test accuracy {result.test_accuracy:.4f} (valid {result.valid_accuracy:.4f}; "
          f"chance = majority class {result.chance_accuracy:.4f})")
    if args.output:
        Path(args.output).write_text(json.dumps(vars(result), indent=2))
    return 0


def convert(args: argparse.Namespace) -> int:
    """Convert an original checkpoint with the family's conversion module (`audiozoo.conversion.<family>`)."""
    module = importlib.import_module(f".conversion.{args.family}", __package__)
    options = conversion_options(args.family, args)
    out = module.convert_and_save(args.checkpoint_path, args.pytorch_dump_folder_path, **options)
    print(f"converted {args.checkpoint_path} -> {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="audiozoo", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    classify_parser = commands.add_parser("classify", help="print the top labels of audio files")
    _add_inference_arguments(classify_parser, model_required=False)
    classify_parser.add_argument("--top-k", type=int, default=5, help="labels per file")
    classify_parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    classify_parser.set_defaults(handler=classify)

    embed_parser = commands.add_parser("embed", help="write clip or frame embeddings of audio files")
    _add_inference_arguments(embed_parser)
    embed_parser.add_argument("--output", required=True, help="X.npy or X.safetensors")
    embed_parser.add_argument("--level", choices=("clip", "frame"), default="clip")
    embed_parser.set_defaults(handler=embed)

    detect_parser = commands.add_parser("detect", help="sound-event detection: events with onsets and offsets")
    _add_inference_arguments(detect_parser)
    detect_parser.add_argument("--threshold", nargs="+", default=None,
                               help="probability threshold (default 0.5); several values, or LABEL=VALUE per class")
    detect_parser.add_argument("--median-window", nargs="+", default=None,
                               help="median filter in frames (default 9 = 360 ms); LABEL=FRAMES per class")
    detect_parser.add_argument("--chunk-batch-size", type=int, default=8, help="10 s windows per forward pass")
    detect_parser.add_argument("--tsv", default=None, help="write events as TSV (filename, onset, offset, event_label)")
    detect_parser.add_argument("--plot", default=None, help="write a spectrogram + event-roll PNG (one file)")
    detect_parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    detect_parser.set_defaults(handler=detect)

    finetune_parser = commands.add_parser("finetune", help="train a model of the package on labelled audio")
    add_finetune_arguments(finetune_parser)
    finetune_parser.set_defaults(handler=finetune)

    distill_parser = commands.add_parser("distill", help="knowledge distillation of a frame classifier (PretrainedSED)")
    add_distill_arguments(distill_parser)
    distill_parser.set_defaults(handler=distill)

    pretrain_parser = commands.add_parser("pretrain", help="self-supervised pre-training of an encoder")
    recipes = pretrain_parser.add_subparsers(dest="recipe", required=True)
    for recipe, module_name, add_name, main_name, text in PRETRAIN_RECIPES:
        module = importlib.import_module(f".training.{module_name}", __package__)
        recipe_parser = recipes.add_parser(recipe, help=text)
        getattr(module, add_name)(recipe_parser)
        recipe_parser.set_defaults(handler=getattr(module, main_name))

    probe_parser = commands.add_parser("probe", help="linear evaluation of an encoder on a labelled manifest")
    probe_parser.add_argument("--model", required=True, help="converted model folder or Hub id")
    probe_parser.add_argument("--data", required=True,
                              help="CSV/TSV manifest: file,label[,split][,group] (paths relative to the manifest)")
    probe_parser.add_argument("--device", default="cpu")
    probe_parser.add_argument("--seed", type=int, default=42)
    probe_parser.add_argument("--output", default=None, help="write the results as JSON here")
    probe_parser.set_defaults(handler=probe)

    convert_parser = commands.add_parser("convert", help="convert an original checkpoint")
    families = convert_parser.add_subparsers(dest="family", required=True)
    for family in CONVERSIONS:
        text, add_arguments = CONVERSION_COMMANDS[family]
        add_arguments(families.add_parser(family, help=text))
    convert_parser.set_defaults(handler=convert)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import audiozoo

    audiozoo.load()  # registers the models and pipelines (deferred by the console entry point)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
