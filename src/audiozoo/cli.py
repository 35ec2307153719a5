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


# `audiozoo pretrain <recipe>`: (recipe, module in audiozoo.training, argument adder, entry point, help)
PRETRAIN_RECIPES = [
    ("eat", "pretrain_eat", "add_arguments", "main",
     "EAT's utterance-frame objective (EMA teacher, inverse block masks, CNN decoder)"),
    ("byol_a", "pretrain_byol_a", "add_arguments", "main",
     "BYOL-A (v1/v2 augmentation chains, projector/predictor, EMA target) on unlabelled audio"),
    ("beats", "pretrain_beats", "add_arguments", "main",
     "BEATs masked patch prediction of frozen-tokenizer labels (random projection for iteration 1)"),
    ("beats_tokenizer", "pretrain_beats", "add_tokenizer_arguments", "main_tokenizer",
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
    from .embeddings import embed_audio, load_encoder

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
    from .training.finetune import FinetuneArgs, run_finetune

    values = {key: value for key, value in vars(args).items() if key in FinetuneArgs.__dataclass_fields__}
    result = run_finetune(FinetuneArgs(**values))
    if result.test:
        print("test " + ", ".join(f"{key} {value:.4f}" for key, value in result.test.items()))
    print(f"best epoch {result.best_epoch} ({result.metric} {result.best_metric}); model in {result.output_dir}; "
          f"{result.seconds:.1f} s")
    return 0


def add_finetune_arguments(parser: argparse.ArgumentParser) -> None:
    from .training.finetune import FinetuneArgs

    defaults = FinetuneArgs(data="", output_dir="")
    parser.add_argument("--data", required=True, help="CSV/TSV manifest (file,label[;label2][,split][,group]), a "
                        "datasets folder (save_to_disk; audio read undecoded) or a folder with one sub-folder per label")
    parser.add_argument("--output_dir", required=True)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="converted model folder or Hub id to start from")
    source.add_argument("--config", help="config.json of a new model (training from scratch)")
    parser.add_argument("--task", choices=("single", "multi", "frame"), default=None,
                        help="default: frame with --events, multi if a clip has several labels, else single")
    parser.add_argument("--events", default=None, help="events TSV (filename, onset, offset, event_label): frame targets")
    parser.add_argument("--labels", default=None, help="class list, one per line (default: the data's labels)")
    for name, kind in (("clip_seconds", float), ("epochs", int), ("max_steps", int), ("batch_size", int), ("lr", float),
                       ("weight_decay", float), ("layer_decay", float), ("warmup_steps", int),
                       ("gradient_accumulation_steps", int), ("mixup_alpha", float), ("gain_db", float),
                       ("time_masks", int), ("time_mask_width", int), ("frequency_masks", int),
                       ("frequency_mask_width", int), ("patience", int), ("checkpoint_every", int), ("seed", int)):
        parser.add_argument(f"--{name}", type=kind, default=getattr(defaults, name))
    parser.add_argument("--scheduler", choices=("cosine", "constant", "step"), default=defaults.scheduler)
    parser.add_argument("--mixed_precision", choices=("no", "fp16", "bf16"), default="no")
    parser.add_argument("--roll", action="store_true", help="random circular shifts of the waveform")
    parser.add_argument("--balanced_sampler", action="store_true", help="class-balanced sampling (multi-label)")
    parser.add_argument("--early_stop_metric", default=None, help="default: accuracy / mAP / frame_micro_f1")
    parser.add_argument("--resume", default=None, help="a checkpoint folder, or 'latest' in OUTPUT_DIR/checkpoints")
    parser.add_argument("--resample", action="store_true", help="resample files at other rates (soxr) instead of "
                        "refusing them")
    parser.add_argument("--cpu", action="store_true")
    parser.add_argument("--log_with", default=None, help="an accelerate tracker (tensorboard, wandb, ...)")


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
    """Dispatch to the family's conversion (same arguments as conversion_scripts/convert_<family>_original_to_hf.py)."""
    if args.family == "beats":
        from .conversion.beats import convert_and_save

        out = convert_and_save(
            args.checkpoint_path,
            args.pytorch_dump_folder_path,
            push_to_hub=args.push_to_hub,
            fold_weight_norm=args.fold_weight_norm,
        )
        print(f"converted {args.checkpoint_path} -> {out}")
        return 0
    if args.family == "ast":
        from .conversion.ast import convert_and_save as convert_ast

        out = convert_ast(
            args.checkpoint_path,
            args.pytorch_dump_folder_path,
            push_to_hub=args.push_to_hub,
            dataset=args.dataset,
            frequency_stride=args.fstride,
            time_stride=args.tstride,
            max_length=args.max_length,
            num_attention_heads=args.num_attention_heads,
            target_max_length=args.target_max_length,
        )
        print(f"converted {args.checkpoint_path} -> {out}")
        return 0
    if args.family == "eat":
        from .conversion.eat import convert_and_save as convert_eat

        out = convert_eat(
            args.checkpoint_path,
            args.pytorch_dump_folder_path,
            push_to_hub=args.push_to_hub,
            dataset=args.dataset,
            max_length=args.max_length,
        )
        print(f"converted {args.checkpoint_path} -> {out}")
        return 0
    if args.family == "byol_a":
        from .conversion.byol_a import convert_and_save as convert_byol_a

        stats = args.norm_stats
        if stats is not None and len(stats) == 2:
            stats = (float(stats[0]), float(stats[1]))
        elif stats is not None:
            stats = stats[0]
        out = convert_byol_a(args.checkpoint_path, args.pytorch_dump_folder_path, push_to_hub=args.push_to_hub,
                             norm_stats=stats)
        print(f"converted {args.checkpoint_path} -> {out}")
        return 0
    if args.family == "pretrained_sed":
        from .conversion.pretrained_sed import convert_and_save as convert_sed

        labels = None
        if args.labels:
            labels = [line.strip() for line in Path(args.labels).read_text(encoding="utf-8").splitlines() if line.strip()]
        out = convert_sed(args.checkpoint_path, args.pytorch_dump_folder_path, args.model_name,
                          push_to_hub=args.push_to_hub, num_labels=args.num_labels, labels=labels,
                          head_type=args.head_type, num_attention_heads=args.num_attention_heads,
                          width_mult=args.width_mult)
        print(f"converted {args.checkpoint_path} -> {out}")
        return 0
    raise SystemExit(f"unknown family {args.family!r}")


def add_pretrained_sed_conversion_arguments(parser: argparse.ArgumentParser) -> None:
    from .conversion.pretrained_sed import MODEL_NAMES

    parser.add_argument("--checkpoint_path", required=True,
                        help="released <Model>_{strong_1,weak,ssl}.pt or frame_mn{06,10}_strong_1.pt")
    parser.add_argument("--model_name", required=True, choices=MODEL_NAMES, help="which model the file holds")
    parser.add_argument("--pytorch_dump_folder_path", required=True, help="output folder")
    parser.add_argument("--num_labels", type=int, default=None,
                        help="classes of the frame head (default: the file's; 447 if it has no heads)")
    parser.add_argument("--labels", default=None, help="text file with one class name per line")
    parser.add_argument("--head_type", choices=("linear", "attention"), default="linear",
                        help="head of the checkpoint (cannot be read from the weights; released files: linear)")
    parser.add_argument("--num_attention_heads", type=int, default=None, help="default: hidden size / 64")
    parser.add_argument("--width_mult", type=float, default=None, help="frame-MobileNet width (default: from shapes)")
    parser.add_argument("--push_to_hub", default=None, help="also upload the folder to this Hub repo")


def add_beats_conversion_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint_path", required=True, help="original BEATs / tokenizer .pt file")
    parser.add_argument("--pytorch_dump_folder_path", required=True, help="output folder")
    parser.add_argument("--push_to_hub", default=None, help="also upload to this Hub repo id")
    parser.add_argument(
        "--fold_weight_norm", action="store_true", help="store the positional convolution as a plain weight"
    )


def add_ast_conversion_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint_path", required=True, help="original AST .pth (DataParallel state dict)")
    parser.add_argument("--pytorch_dump_folder_path", required=True, help="output folder")
    parser.add_argument("--push_to_hub", default=None, help="also upload to this Hub repo id")
    parser.add_argument("--dataset", choices=("audioset", "esc50", "speechcommands"), default="audioset",
                        help="recipe: normalisation stats, input length and labels")
    parser.add_argument("--fstride", type=int, default=None, help="frequency stride (default: from the file name)")
    parser.add_argument("--tstride", type=int, default=None, help="time stride (default: from the file name)")
    parser.add_argument("--max_length", type=int, default=None, help="input frames it was trained with")
    parser.add_argument("--num_attention_heads", type=int, default=None, help="default hidden_size // 64")
    parser.add_argument("--target_max_length", type=int, default=None,
                        help="re-grid the position table for this many input frames")


def add_eat_conversion_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint_path", required=True, help="original EAT fairseq .pt (pre-trained or fine-tuned)")
    parser.add_argument("--pytorch_dump_folder_path", required=True, help="output folder")
    parser.add_argument("--push_to_hub", default=None, help="also upload to this Hub repo id")
    parser.add_argument("--dataset", choices=("audioset", "esc50", "speechcommands"), default="audioset",
                        help="normalisation statistics of the recipe")
    parser.add_argument("--max_length", type=int, default=None,
                        help="input frames (default: the checkpoint's target_length)")


def add_byol_a_conversion_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint_path", required=True, help="BYOL-A v1/v2 .pth or a training checkpoint")
    parser.add_argument("--pytorch_dump_folder_path", required=True, help="output folder")
    parser.add_argument("--push_to_hub", default=None, help="also upload to this Hub repo id")
    parser.add_argument("--norm_stats", nargs="+", default=None, metavar="MEAN STD | PRESET",
                        help="log-mel mean and std of your dataset, or a preset name (v1_readme, v2_spcv2)")


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

    from .training import distill as distill_module

    distill_parser = commands.add_parser("distill", help="knowledge distillation of a frame classifier (PretrainedSED)")
    distill_module.add_arguments(distill_parser)
    distill_parser.set_defaults(handler=distill_module.main)

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
    add_beats_conversion_arguments(families.add_parser("beats", help="BEATs, fine-tuned BEATs or a BEATs tokenizer"))
    add_ast_conversion_arguments(families.add_parser("ast", help="Audio Spectrogram Transformer (.pth)"))
    add_eat_conversion_arguments(families.add_parser("eat", help="EAT (fairseq checkpoint, no fairseq needed)"))
    add_byol_a_conversion_arguments(families.add_parser("byol_a", help="BYOL-A v1 or v2 encoder"))
    add_pretrained_sed_conversion_arguments(families.add_parser(
        "pretrained_sed", help="PretrainedSED frame models (BEATs, ATST-F, fpasst, ASIT, M2D, frame_mn06/10)"))
    convert_parser.set_defaults(handler=convert)
    return parser


def main(argv: list[str] | None = None) -> int:
    import audiozoo  # noqa: F401  (registers the models and pipelines)

    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
