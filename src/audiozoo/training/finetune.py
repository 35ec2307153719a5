"""`audiozoo finetune`: supervised training of any model of the package, with accelerate.

Reads top to bottom: data -> model -> optimiser/schedule -> accelerator -> (resume) -> epochs of training with
evaluation, early stopping and checkpoints -> the best model saved as a ready-to-use folder -> test scores.
`accelerate launch -m audiozoo.cli finetune ...` runs the same code on one GPU, several GPUs or several nodes.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from accelerate.utils import set_seed
from transformers import AutoFeatureExtractor, AutoModelForAudioClassification, AutoModelForAudioFrameClassification

from . import loop
from .augment import mixup, random_gain, random_roll
from .common import (
    TrainingState,
    augment_features,
    compute_features,
    default_feature_extractor,
    load_config,
    make_accelerator,
    split_examples,
)
from .data import (
    ClipDataset,
    attach_events,
    check_examples,
    examples_from_source,
    load_example_audio,
    read_events_table,
)
from .options import FinetuneArgs
from .metrics import accuracy, frame_f1, multilabel_metrics
from .optim import build_scheduler, parameter_groups
from .sampling import balanced_sampler

logger = logging.getLogger(__name__)


@dataclass
class FinetuneResult:
    output_dir: str
    best_epoch: int
    best_metric: float | None
    metric: str
    test: dict = field(default_factory=dict)
    history: list = field(default_factory=list)
    losses: list = field(default_factory=list)
    seconds: float = 0.0
    sizes: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)  # the run's arguments: what a model card says it was trained from


PRIMARY_METRIC = {"single": "accuracy", "multi": "mAP", "frame": "frame_micro_f1"}


def _task(args: FinetuneArgs, examples) -> str:
    if args.task:
        return args.task
    if args.events:
        return "frame"
    return "multi" if any(len(example.labels) > 1 for example in examples) else "single"


def _build_model(args: FinetuneArgs, labels: list[str], task: str):
    """The model with a head for `labels` (a new head when the checkpoint's differs) and its feature extractor."""
    config = load_config(args.model or args.config)
    config.id2label = dict(enumerate(labels))
    config.label2id = {label: index for index, label in enumerate(labels)}
    config.problem_type = "single_label_classification" if task == "single" else "multi_label_classification"
    if task != "frame" and getattr(config, "sed_head", None) is not None:
        # a clip task trains the family's pooled clip head, not a PretrainedSED frame head's clip output
        config.sed_head = None
    auto = AutoModelForAudioFrameClassification if task == "frame" else AutoModelForAudioClassification
    if args.model:
        model = auto.from_pretrained(args.model, config=config, ignore_mismatched_sizes=True, dtype=torch.float32)
        feature_extractor = AutoFeatureExtractor.from_pretrained(args.model)
    else:
        model = auto.from_config(config)
        feature_extractor = default_feature_extractor(config)
    return model, feature_extractor


def _batch_loss(output, targets: torch.Tensor, task: str) -> torch.Tensor:
    if task == "single":  # soft targets after mixup: cross-entropy against the mixed one-hot rows
        return -(targets * torch.log_softmax(output.logits.float(), dim=-1)).sum(dim=-1).mean()
    if task == "multi":
        return torch.nn.functional.binary_cross_entropy_with_logits(output.logits.float(), targets.float())
    return output.loss


@torch.no_grad()
def evaluate(model, feature_extractor, loader, task: str, accelerator, examples=None, labels=None,
             frame_rate: float | None = None) -> dict[str, float]:
    """Metrics of `model` on `loader` (gathered across processes). Frame tasks with `examples` (their events),
    `labels` and `frame_rate` also get PSDS1 (DCASE scenario 1) against the reference events."""
    model.eval()
    outputs, truths, indices = [], [], []
    for batch in loader:
        features = compute_features(feature_extractor, batch["waveform"], accelerator.device)
        if task == "frame":
            result = model(input_values=features)
            prediction = result.probabilities if result.probabilities is not None else result.logits.sigmoid()
        else:
            prediction = model(input_values=features).logits
        prediction, truth, index = accelerator.gather_for_metrics((prediction.float(), batch["target"], batch["index"]))
        outputs.append(prediction.cpu().numpy())
        truths.append(truth.cpu().numpy())
        indices.append(index.cpu().numpy())
    model.train()
    scores, targets = np.concatenate(outputs), np.concatenate(truths)
    if task == "single":
        return {"accuracy": accuracy(scores, targets)}
    if task == "multi":
        return {**multilabel_metrics(scores, targets), "accuracy": accuracy(scores, targets)}
    frames = min(scores.shape[1], targets.shape[1])
    result = frame_f1(scores[:, :frames], targets[:, :frames])
    if examples is not None and any(example.events for example in examples):
        result["psds1"] = _psds1(scores, np.concatenate(indices), examples, labels, frame_rate)
    return result


def _psds1(scores: np.ndarray, indices: np.ndarray, examples, labels: list[str], frame_rate: float) -> float:
    """PSDS1 of window probabilities against the examples' events (windows start at the clip start)."""
    from ..sed.evaluation import psds1

    names = [f"{index}_{examples[index].path.name}" for index in indices]
    window = scores.shape[1] / frame_rate
    truth = {name: [event for event in examples[index].events if event[0] < window]
             for name, index in zip(names, indices, strict=True)}
    truth = {name: [(onset, min(offset, window), label) for onset, offset, label in events]
             for name, events in truth.items()}
    try:
        value = psds1(dict(zip(names, scores, strict=True)), 1.0 / frame_rate, labels, truth,
                      {name: window for name in names})["psds"]
    except ValueError as error:  # e.g. no class has a reference event in this split
        logger.warning("PSDS1 not computed: %s", error)
        return float("nan")
    return float(value)


def _onehot(targets: torch.Tensor, classes: int, task: str) -> torch.Tensor:
    return torch.nn.functional.one_hot(targets, classes).float() if task == "single" else targets.float()


def run_finetune(args: FinetuneArgs, teacher=None, distillation_loss_weight: float = 0.0) -> FinetuneResult:
    """Train, evaluate each epoch, keep the best. With `teacher` — a factory (model, feature extractor, labels,
    train examples, device) -> callable (batch, train examples) -> teacher frame logits [B, T, C] — the frame loss
    becomes w * BCE(sigmoid(teacher)) + (1 - w) * BCE(labels): PretrainedSED's distillation (`audiozoo distill`)."""
    started = time.perf_counter()
    set_seed(args.seed)
    output_dir = Path(args.output_dir)

    # 1. data, checked row by row before anything is built
    examples = examples_from_source(args.data)
    if args.events:
        examples = attach_events(examples, read_events_table(args.events))
    task = _task(args, examples)
    if task == "frame" and any(example.events for example in examples):
        # validation scores PSDS1 (sed_scores_eval, the `sed` extra): without it, fail now rather than after an epoch
        from ..sed.evaluation import require_sed_metrics

        require_sed_metrics()
    labels = sorted({label for example in examples for label in example.labels})
    if args.labels:
        labels = [line.strip() for line in Path(args.labels).read_text(encoding="utf-8").splitlines() if line.strip()]
    splits = split_examples(examples, args.seed)

    # 2. model and front end
    model, feature_extractor = _build_model(args, labels, task)
    check_examples(examples, labels, feature_extractor.sampling_rate, args.resample)
    if not args.model and hasattr(feature_extractor, "compute_norm_stats"):
        # a new model's statistics come from its training clips (BYOL-A's recipe)
        feature_extractor.compute_norm_stats(
            [load_example_audio(example, feature_extractor.sampling_rate) for example in splits["train"]],
            feature_extractor.sampling_rate)
    frame_rate = getattr(model.config, "frame_rate", None) if task == "frame" else None

    def dataset(split: str, train: bool) -> ClipDataset:
        return ClipDataset(splits[split], labels, feature_extractor.sampling_rate, args.clip_seconds, task, train,
                           frame_rate, args.seed)

    train_set = dataset("train", True)
    sampler = balanced_sampler(train_set.targets(), seed=args.seed) if args.balanced_sampler else None
    # loaders get their own generators: creating an iterator then never draws from the global generator, whose
    # state (saved with each checkpoint) the augmentations use, so a resumed run draws exactly what the first did
    train_loader = torch.utils.data.DataLoader(train_set, batch_size=args.batch_size, shuffle=sampler is None,
                                               sampler=sampler, drop_last=len(train_set) > args.batch_size,
                                               generator=torch.Generator().manual_seed(args.seed))
    valid_loader = torch.utils.data.DataLoader(dataset("valid", False), batch_size=args.batch_size,
                                               generator=torch.Generator().manual_seed(args.seed))

    # 3. optimiser and schedule
    steps_per_epoch = max(1, math.ceil(len(train_loader) / args.gradient_accumulation_steps))
    total_steps = args.max_steps or steps_per_epoch * args.epochs
    optimizer = torch.optim.AdamW(parameter_groups(model, args.lr, args.weight_decay, args.layer_decay), lr=args.lr)
    scheduler = build_scheduler(optimizer, args.scheduler, args.warmup_steps, total_steps)

    # 4. accelerator (devices, processes, mixed precision, accumulation, checkpoints)
    accelerator = make_accelerator(output_dir, args.mixed_precision, args.gradient_accumulation_steps, args.log_with,
                                   args.cpu, find_unused_parameters=getattr(model.config, "layerdrop", 0.0) > 0)
    model, optimizer, train_loader, valid_loader, scheduler = accelerator.prepare(
        model, optimizer, train_loader, valid_loader, scheduler)
    state = TrainingState()
    accelerator.register_for_checkpointing(state)
    teacher_fn = None
    if teacher is not None:
        teacher_fn = teacher(accelerator.unwrap_model(model), feature_extractor, labels, splits["train"],
                             accelerator.device)
    loop.init_trackers(accelerator, "audiozoo-finetune", args)

    # 5. resume (mid-epoch: the batches already seen in the current epoch are skipped)
    loop.resume(accelerator, args, output_dir, state)

    metric = args.early_stop_metric or PRIMARY_METRIC[task]
    model_type = accelerator.unwrap_model(model).config.model_type
    best_dir = output_dir / "best"
    stop = False
    model.train()
    progress = loop.progress_bar(accelerator, state, total_steps, "finetune")
    while state.epoch < args.epochs and not stop:
        train_set.set_epoch(state.epoch)
        for batch in loop.epoch_batches(accelerator, train_loader, state):
            waveforms = batch["waveform"]
            if args.roll:
                waveforms = random_roll(waveforms, batch["length"])
            waveforms = random_gain(waveforms, args.gain_db)
            targets = _onehot(batch["target"], len(labels), task)
            if args.mixup_alpha > 0:
                waveforms, targets = mixup(waveforms, targets, args.mixup_alpha)
            features = compute_features(feature_extractor, waveforms, accelerator.device)
            features = augment_features(features, model_type, args.time_masks, args.time_mask_width,
                                        args.frequency_masks, args.frequency_mask_width)
            with accelerator.accumulate(model):
                with accelerator.autocast():
                    output = model(input_values=features, labels=targets if task == "frame" else None)
                    loss = _batch_loss(output, targets, task)
                    if teacher_fn is not None:
                        soft = teacher_fn(batch, splits["train"]).to(output.logits.device).sigmoid()
                        distilled = torch.nn.functional.binary_cross_entropy_with_logits(output.logits.float(), soft)
                        loss = distillation_loss_weight * distilled + (1 - distillation_loss_weight) * loss
                loop.backward_and_step(accelerator, model, loss, optimizer, scheduler, 1.0)
            if accelerator.sync_gradients:
                state.step += 1
                loss_value = float(accelerator.gather(loss.detach()).mean())
                loop.log_step(accelerator, state, progress, {"train/loss": loss_value},
                              {"lr": scheduler.get_last_lr()[-1]})
                loop.checkpoint_if_due(accelerator, state, args)
                if loop.stop_requested(state, args):
                    stop = True
                    break
                if args.max_steps and state.step >= args.max_steps:
                    break
        if stop:
            break
        # end of epoch: evaluate, keep the best, maybe stop early
        scores = evaluate(model, feature_extractor, valid_loader, task, accelerator, splits["valid"], labels, frame_rate)
        state.history.append({"epoch": state.epoch, "step": state.step, **scores})
        accelerator.log({f"valid/{key}": value for key, value in scores.items()}, step=state.step)
        accelerator.print(_table_row(state.history[-1], first=len(state.history) == 1))
        improved = state.best_metric is None or scores[metric] > state.best_metric
        if improved:
            state.best_metric, state.best_epoch, state.epochs_without_improvement = scores[metric], state.epoch, 0
            loop.save_model_folder(accelerator, accelerator.unwrap_model(model), feature_extractor, best_dir)
        else:
            state.epochs_without_improvement += 1
        loop.next_epoch(accelerator, state, args)
        if state.epochs_without_improvement >= args.patience:
            accelerator.print(f"early stop: no {metric} improvement for {args.patience} epochs")
            break
        if args.max_steps and state.step >= args.max_steps:
            break
    progress.close()
    if stop:  # interrupted on purpose (tests): the checkpoint is the result
        accelerator.save_state()
        accelerator.end_training()
        return FinetuneResult(str(output_dir), state.best_epoch, state.best_metric, metric, {}, state.history,
                              state.losses, time.perf_counter() - started)

    # 6. the best model as the ready-to-use folder, scored on the test split
    test_scores = {}
    if best_dir.is_dir():
        accelerator.wait_for_everyone()
        best = type(accelerator.unwrap_model(model)).from_pretrained(best_dir).to(accelerator.device)
        loop.save_model_folder(accelerator, accelerator.unwrap_model(best), feature_extractor, output_dir)
        if splits["test"]:
            test_loader = accelerator.prepare(torch.utils.data.DataLoader(
                dataset("test", False), batch_size=args.batch_size, generator=torch.Generator().manual_seed(args.seed)))
            test_scores = evaluate(best, feature_extractor, test_loader, task, accelerator, splits["test"], labels,
                                   frame_rate)
            if task == "single":  # the majority class's share: what a constant guess scores
                counts = dataset("test", False).targets().sum(axis=0)
                test_scores["chance_accuracy"] = float(counts.max() / counts.sum())
            accelerator.print("test: " + ", ".join(f"{key} {value:.4f}" for key, value in test_scores.items()))
    result = FinetuneResult(str(output_dir), state.best_epoch, state.best_metric, metric, test_scores, state.history,
                            state.losses, time.perf_counter() - started,
                            {split: len(members) for split, members in splits.items()}, asdict(args))
    loop.write_results(accelerator, output_dir, result)
    accelerator.end_training()
    return result


def _table_row(row: dict, first: bool) -> str:
    keys = [key for key in row if key not in ("epoch", "step")]
    line = f"{row['epoch']:>5} {row['step']:>6} " + " ".join(f"{row[key]:>10.4f}" for key in keys)
    if first:
        return f"{'epoch':>5} {'step':>6} " + " ".join(f"{key:>10}" for key in keys) + "\n" + line
    return line


__all__ = ["FinetuneArgs", "FinetuneResult", "evaluate", "run_finetune"]
