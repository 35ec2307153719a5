"""`audiozoo distill`: knowledge distillation of a frame classifier, as PretrainedSED's AudioSet-strong students.

The student (`...ForAudioFrameClassification` with the SED head) learns from strong labels and from teacher
frame logits: loss = w * BCE(student, sigmoid(teacher)) + (1 - w) * BCE(student, labels), w =
`distillation_loss_weight` (0.9 in the paper's student run). Teacher logits come either from a pseudo-label
file — HDF5 with `filenames` (bytes) and `strong_logits` [N, C, T] float16, the layout of the published
ensemble file — or from teacher models run on the same windows (their logits averaged). Validation reports
frame F1 and PSDS1 (`audiozoo.sed.psds1`, DCASE scenario 1; it needs the `sed` extra, `pip install
"audiozoo[sed]"`, and a run without it stops before training starts). Everything else is `audiozoo finetune`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from transformers import AutoFeatureExtractor, AutoModelForAudioFrameClassification

from .finetune import FinetuneResult, run_finetune
from .options import DistillArgs, add_distill_arguments


class PseudoLabelTeacher:
    """Teacher frame logits looked up by clip name in a pseudo-label HDF5 file.

    Names are matched without their extension (the original strips the characters ".mp3" with `rstrip`, which
    also eats trailing 'm', 'p' or '3' of an id; here only a real suffix is removed). Frames are taken from the
    window's start, so random crops keep their teacher frames aligned."""

    def __init__(self, path: str | Path, frame_rate: float, sampling_rate: int, num_frames: int, num_classes: int):
        import h5py

        # rows are read when a batch needs them: the published file (~100k clips x 447 x 250) would not fit in
        # memory as float32
        self.file = h5py.File(path, "r")
        if "filenames" not in self.file or "strong_logits" not in self.file:
            raise ValueError(f"{path}: expected datasets 'filenames' and 'strong_logits', found {list(self.file)}")
        names = [name.decode() if isinstance(name, bytes) else str(name) for name in self.file["filenames"][:]]
        self.logits = self.file["strong_logits"]  # [N, C, T] float16, on disk
        if self.logits.ndim != 3 or self.logits.shape[1] != num_classes:
            raise ValueError(
                f"{path}: strong_logits must be [clips, {num_classes} classes, frames], got {self.logits.shape}")
        self.rows = {Path(name).stem: row for row, name in enumerate(names)}
        self.frame_rate, self.sampling_rate, self.num_frames = frame_rate, sampling_rate, num_frames

    def check(self, examples) -> None:
        missing = [example.source for example in examples if example.path.stem not in self.rows]
        if missing:
            raise ValueError(f"no pseudo labels for {len(missing)} clips, e.g. {missing[:3]}")

    def __call__(self, batch: dict, examples) -> torch.Tensor:
        frames = []
        for index, start in zip(batch["index"].tolist(), batch["start"].tolist(), strict=True):
            logits = torch.from_numpy(self.logits[self.rows[examples[index].path.stem]].astype(np.float32)).T
            first = int(round(start / self.sampling_rate * self.frame_rate))
            window = logits[first : first + self.num_frames]
            if window.shape[0] < self.num_frames:  # clip shorter than the window: pad with a confident "absent"
                window = torch.cat([window, torch.full((self.num_frames - window.shape[0], window.shape[1]), -20.0)])
            frames.append(window)
        return torch.stack(frames)


class ModelTeacher:
    """Teacher models run on the training windows; their frame logits are averaged (an ensemble)."""

    def __init__(self, folders: tuple[str, ...], labels: list[str], device: torch.device | str = "cpu"):
        self.members = []
        for folder in folders:
            model = AutoModelForAudioFrameClassification.from_pretrained(folder, dtype=torch.float32).to(device).eval()
            teacher_labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
            if teacher_labels != labels:
                raise ValueError(f"teacher {folder} predicts other classes than the student's labels "
                                 f"({teacher_labels[:3]}... vs {labels[:3]}...)")
            self.members.append((model, AutoFeatureExtractor.from_pretrained(folder)))
        self.device = device

    @torch.no_grad()
    def __call__(self, batch: dict, examples) -> torch.Tensor:
        total = None
        for model, extractor in self.members:
            inputs = extractor(list(batch["waveform"].cpu()), sampling_rate=extractor.sampling_rate)
            logits = model(input_values=inputs["input_values"].to(self.device)).logits
            total = logits if total is None else total + logits
        return total / len(self.members)


def run_distill(args: DistillArgs) -> FinetuneResult:
    if bool(args.pseudo_labels) == bool(args.teachers):
        raise ValueError("give either pseudo_labels (an HDF5 file) or teachers (model folders)")
    if args.mixup_alpha > 0:
        raise ValueError("mixup is not combined with distillation here (the teacher targets would need mixing too)")
    if not 0.0 <= args.distillation_loss_weight <= 1.0:
        raise ValueError(f"distillation_loss_weight must be in [0, 1], got {args.distillation_loss_weight}")
    args.task = "frame"

    def teacher_factory(model, feature_extractor, labels, train_examples, device):
        if args.teachers:
            return ModelTeacher(tuple(args.teachers), labels, device)
        frames = int(round(args.clip_seconds * model.config.frame_rate))
        teacher = PseudoLabelTeacher(args.pseudo_labels, model.config.frame_rate, feature_extractor.sampling_rate,
                                     frames, len(labels))
        teacher.check(train_examples)
        return teacher

    return run_finetune(args, teacher=teacher_factory, distillation_loss_weight=args.distillation_loss_weight)


def main(args: argparse.Namespace) -> int:
    values = {key: value for key, value in vars(args).items() if key in DistillArgs.__dataclass_fields__}
    values["teachers"] = tuple(values.get("teachers") or ())
    result = run_distill(DistillArgs(**values))
    print(f"best epoch {result.best_epoch} ({result.metric} {result.best_metric}); student in {result.output_dir}; "
          f"{result.seconds:.1f} s")
    return 0


__all__ = ["DistillArgs", "ModelTeacher", "PseudoLabelTeacher", "add_distill_arguments", "main", "run_distill"]
