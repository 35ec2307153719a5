"""Steps every accelerate training loop of the package takes alike, as small functions: trackers, resume, the
progress bar, the batches an epoch has left, backward + optimiser step, logging a step, checkpoints, the end of an
epoch and the saved folder; and `train_steps`, the plain epochs-of-steps loop of the pre-training recipes that
need nothing else (BEATs, its tokenizer, EAT): each gives it the loss of one batch and, if any, what follows an
optimiser update (EAT's EMA teacher). Loops with more (evaluation and early stopping in finetune, BYOL-A's own
stop rule) call the small functions in their own order. Either way a loop's own steps stay in its file."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Protocol

import torch
from accelerate import Accelerator
from tqdm.auto import tqdm

from .common import TrainingState, latest_checkpoint
from .options import RunOptions


def init_trackers(accelerator: Accelerator, name: str, options: RunOptions) -> None:
    """Start the `log_with` tracker (if any) with the run's settings, so every logged run shows how it was made."""
    if options.log_with:
        accelerator.init_trackers(name, config={key: value for key, value in asdict(options).items()
                                                if value is not None})


def resume(accelerator: Accelerator, options: RunOptions, output_dir: Path, state: TrainingState) -> None:
    """Restore model, optimiser, schedule, random states and registered objects from `options.resume` (a
    checkpoint folder or "latest"), so a killed run continues exactly; new checkpoints get the next numbers."""
    if not options.resume:
        return
    checkpoint = latest_checkpoint(output_dir) if options.resume == "latest" else Path(options.resume)
    accelerator.load_state(str(checkpoint))
    accelerator.project_configuration.iteration = int(checkpoint.name.split("_")[-1]) + 1
    accelerator.print(f"resumed from {checkpoint} at epoch {state.epoch}, step {state.step}")


def progress_bar(accelerator: Accelerator, state: TrainingState, total_steps: int, description: str) -> tqdm:
    """Optimiser steps done / total, on the local main process only; a resumed run starts at its step."""
    return tqdm(total=total_steps, initial=state.step, desc=description, unit="step",
                disable=not accelerator.is_local_main_process)


def epoch_batches(accelerator: Accelerator, loader: Iterable, state: TrainingState) -> Iterator[dict]:
    """The batches of epoch `state.epoch` not consumed yet (a run resumed mid-epoch skips those its checkpoint had
    seen), each counted in `state.batches_in_epoch` as it is handed out, so a checkpoint knows where to go on."""
    if hasattr(loader, "set_epoch"):
        loader.set_epoch(state.epoch)
    batches = accelerator.skip_first_batches(loader, state.batches_in_epoch) if state.batches_in_epoch else loader
    for batch in batches:
        state.batches_in_epoch += 1
        yield batch


def backward_and_step(accelerator: Accelerator, model: torch.nn.Module, loss: torch.Tensor, optimizer,
                      scheduler=None, max_grad_norm: float | None = None) -> None:
    """Backward, gradient clipping on the micro-batch that completes an accumulation, optimiser (and schedule) step
    and zeroing; called inside `accelerator.accumulate(model)`, which skips the step until accumulation is done."""
    accelerator.backward(loss)
    if max_grad_norm is not None and accelerator.sync_gradients:
        accelerator.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    if scheduler is not None:
        scheduler.step()
    optimizer.zero_grad()


def mean_over_processes(accelerator: Accelerator, values: dict[str, torch.Tensor]) -> dict[str, float]:
    """{"train/<name>": value averaged over processes} of scalar tensors, gathered in one call."""
    stacked = torch.stack([value.detach().float() for value in values.values()])
    means = accelerator.gather(stacked[None]).mean(dim=0)
    return {f"train/{name}": float(mean) for name, mean in zip(values, means, strict=True)}


def log_step(accelerator: Accelerator, state: TrainingState, progress: tqdm, logged: dict[str, float],
             also: dict[str, float] | None = None) -> None:
    """Record an optimiser step's "train/loss" in the state (the run's result), the progress bar and the trackers
    (with the other `logged` values and `also`, e.g. the learning rate)."""
    state.losses.append((state.step, logged["train/loss"]))
    progress.update(1)
    progress.set_postfix(loss=f"{logged['train/loss']:.4f}", epoch=state.epoch)
    accelerator.log({**logged, **(also or {})}, step=state.step)


def checkpoint_if_due(accelerator: Accelerator, state: TrainingState, options: RunOptions) -> None:
    """Checkpoint every `checkpoint_every` optimiser steps (with 0 the loop checkpoints at epoch ends instead)."""
    if options.checkpoint_every and state.step % options.checkpoint_every == 0:
        accelerator.save_state()


def stop_requested(state: TrainingState, options: RunOptions) -> bool:
    """True once `stop_after_steps` optimiser steps are done: tests end a run there, to resume it."""
    return bool(options.stop_after_steps and state.step >= options.stop_after_steps)


def next_epoch(accelerator: Accelerator, state: TrainingState, options: RunOptions) -> None:
    """Move the state to the next epoch's first batch, and checkpoint there unless checkpoints go by steps."""
    state.epoch += 1
    state.batches_in_epoch = 0
    if not options.checkpoint_every:
        accelerator.save_state()


class StepOptions(Protocol):
    """The settings `train_steps` reads (fields of every pre-training dataclass)."""

    epochs: int
    max_steps: int | None
    max_grad_norm: float
    checkpoint_every: int
    stop_after_steps: int | None


def train_steps(accelerator: Accelerator, model: torch.nn.Module, optimizer, scheduler, loader,
                state: TrainingState, args: StepOptions, total_steps: int, description: str,
                batch_loss: Callable[[dict], tuple[torch.Tensor, dict[str, torch.Tensor]]],
                after_update: Callable[[int], dict[str, float]] | None = None) -> bool:
    """Optimiser steps over epochs (mid-epoch resume, checkpoints, max_steps); `batch_loss(batch)` gives the loss
    and extra values to log (averaged over processes), `after_update(step)` runs after each optimiser update and
    gives values to log as they are. Returns True when `stop_after_steps` ended the run (after checkpointing)."""
    stop = done = False
    model.train()
    progress = progress_bar(accelerator, state, total_steps, description)
    while state.epoch < args.epochs and not (stop or done):
        for batch in epoch_batches(accelerator, loader, state):
            with accelerator.accumulate(model):
                loss, extra = batch_loss(batch)
                backward_and_step(accelerator, model, loss, optimizer, scheduler, args.max_grad_norm)
            if not accelerator.sync_gradients:
                continue
            state.step += 1
            updated = after_update(state.step) if after_update is not None else {}
            log_step(accelerator, state, progress, mean_over_processes(accelerator, {"loss": loss, **extra}),
                     {**updated, "lr": scheduler.get_last_lr()[-1]})
            checkpoint_if_due(accelerator, state, args)
            if stop_requested(state, args):
                stop = True
                break
            if args.max_steps and state.step >= args.max_steps:
                done = True
                break
        if stop:
            break
        if not done:
            next_epoch(accelerator, state, args)
    progress.close()
    if stop:  # interrupted on purpose (tests): the checkpoint is the result
        accelerator.save_state()
    return stop


def save_model_folder(accelerator: Accelerator, model, feature_extractor, folder: Path) -> None:
    """`model` (an unwrapped PreTrainedModel) and its front end as a folder `from_pretrained` loads, written once."""
    accelerator.wait_for_everyone()
    model.save_pretrained(folder, is_main_process=accelerator.is_main_process, save_function=accelerator.save)
    if accelerator.is_main_process:
        feature_extractor.save_pretrained(folder)


def write_results(accelerator: Accelerator, folder: Path, result, name: str = "results.json") -> None:
    """The run's result dataclass as JSON next to the model, written by the main process."""
    if accelerator.is_main_process:
        (folder / name).write_text(json.dumps(asdict(result), indent=2), encoding="utf-8")


__all__ = [
    "StepOptions",
    "backward_and_step",
    "checkpoint_if_due",
    "epoch_batches",
    "init_trackers",
    "log_step",
    "mean_over_processes",
    "next_epoch",
    "progress_bar",
    "resume",
    "save_model_folder",
    "stop_requested",
    "train_steps",
    "write_results",
]
