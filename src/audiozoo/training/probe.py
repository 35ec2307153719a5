"""Linear evaluation of a frozen encoder, as BYOL-A's evaluate.py: embeddings, standardised with the training
split's statistics, one linear layer trained with early stopping on the validation split."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..inference.embeddings import embed_audio, load_encoder
from .manifest import assign_splits, read_manifest


@dataclass
class ProbeResult:
    test_accuracy: float
    valid_accuracy: float
    chance_accuracy: float
    sizes: dict[str, int]
    labels: list[str]
    epochs: int


def train_linear_probe(train_x: np.ndarray, train_y: np.ndarray, valid_x: np.ndarray, valid_y: np.ndarray,
                       num_classes: int, max_epochs: int = 200, patience: int = 20, lr: float = 1e-3,
                       seed: int = 42) -> tuple[torch.nn.Linear, float, int]:
    """Full-batch Adam on cross-entropy; keeps the weights of the lowest validation loss (accuracy saturates on
    small validation sets long before the probe has learned) and returns their validation accuracy."""
    generator = torch.Generator().manual_seed(seed)
    probe = torch.nn.Linear(train_x.shape[1], num_classes)
    with torch.no_grad():
        probe.weight.copy_(torch.randn(probe.weight.shape, generator=generator) * 0.01)
        probe.bias.zero_()
    optimiser = torch.optim.Adam(probe.parameters(), lr=lr)
    inputs, targets = torch.from_numpy(train_x).float(), torch.from_numpy(train_y).long()
    valid_inputs, valid_targets = torch.from_numpy(valid_x).float(), torch.from_numpy(valid_y).long()
    best_loss, best_accuracy, best_state, best_epoch, waited = float("inf"), 0.0, None, 0, 0
    for epoch in range(1, max_epochs + 1):
        loss = torch.nn.functional.cross_entropy(probe(inputs), targets)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        with torch.no_grad():
            logits = probe(valid_inputs)
            valid_loss = float(torch.nn.functional.cross_entropy(logits, valid_targets))
            accuracy = float((logits.argmax(1) == valid_targets).float().mean())
        if valid_loss < best_loss:
            best_loss, best_accuracy, best_epoch, waited = valid_loss, accuracy, epoch, 0
            best_state = {key: value.clone() for key, value in probe.state_dict().items()}
        else:
            waited += 1
            if waited >= patience:
                break
    probe.load_state_dict(best_state)
    return probe, best_accuracy, best_epoch


def run_probe(model: str, manifest: str, device: str = "cpu", seed: int = 42) -> ProbeResult:
    """Embed every clip of `manifest` with `model` (frozen), then train and test a linear probe."""
    rows = read_manifest(manifest)
    splits = np.array(assign_splits(rows, seed))
    for split in ("train", "valid", "test"):
        if not (splits == split).any():
            raise ValueError(f"{manifest}: the {split} split is empty")
    labels = sorted({row.label for row in rows})
    targets = np.array([labels.index(row.label) for row in rows])
    feature_extractor, encoder = load_encoder(model, device)
    features = np.stack([embed_audio(feature_extractor, encoder, row.path, "clip", device) for row in rows])
    train = splits == "train"
    mean, std = features[train].mean(0), features[train].std(0) + 1e-8
    features = (features - mean) / std
    probe, valid_accuracy, epochs = train_linear_probe(
        features[train], targets[train], features[splits == "valid"], targets[splits == "valid"], len(labels),
        seed=seed,
    )
    test = splits == "test"
    with torch.no_grad():
        predictions = probe(torch.from_numpy(features[test]).float()).argmax(1).numpy()
    counts = np.bincount(targets[test], minlength=len(labels))
    return ProbeResult(
        test_accuracy=float((predictions == targets[test]).mean()),
        valid_accuracy=valid_accuracy,
        chance_accuracy=float(counts.max() / counts.sum()),
        sizes={split: int((splits == split).sum()) for split in ("train", "valid", "test")},
        labels=labels,
        epochs=epochs,
    )
