"""Evaluation metrics: accuracy; mAP, mAUC and d' for multi-label clips; frame F1 for frame targets.
Event-level metrics (PSDS1, collar F1) live in `audiozoo.sed`."""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import norm


def accuracy(logits: np.ndarray, targets: np.ndarray) -> float:
    """Top-1 accuracy; `targets` are class ids [N] or (mixed) one-hot rows [N, C]."""
    truth = targets.argmax(axis=1) if targets.ndim == 2 else targets
    return float((logits.argmax(axis=1) == truth).mean())


def average_precision(scores: np.ndarray, truth: np.ndarray) -> float:
    """Area under the precision-recall curve of one class (scikit-learn's step definition); NaN without positives."""
    positives = truth.sum()
    if positives == 0:
        return math.nan
    order = np.argsort(-scores, kind="mergesort")
    sorted_scores, hits = scores[order], truth[order]
    # one operating point per distinct score (tied scores are accepted together)
    last_of_run = np.r_[np.diff(sorted_scores) != 0, True]
    true_positives = np.cumsum(hits)[last_of_run]
    predicted = np.arange(1, len(hits) + 1)[last_of_run]
    precision, recall = true_positives / predicted, true_positives / positives
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def roc_auc(scores: np.ndarray, truth: np.ndarray) -> float:
    """Area under the ROC curve of one class (ties count one half); NaN without positives or negatives."""
    positives, negatives = scores[truth > 0.5], scores[truth <= 0.5]
    if len(positives) == 0 or len(negatives) == 0:
        return math.nan
    ranks = _average_ranks(np.concatenate([positives, negatives]))
    return float((ranks[: len(positives)].sum() - len(positives) * (len(positives) + 1) / 2)
                 / (len(positives) * len(negatives)))


def _average_ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(1, len(values) + 1)
    sorted_values = values[order]
    start = 0
    while start < len(values):
        end = start
        while end + 1 < len(values) and sorted_values[end + 1] == sorted_values[start]:
            end += 1
        if end > start:
            ranks[order[start : end + 1]] = (start + end + 2) / 2
        start = end + 1
    return ranks


def multilabel_metrics(scores: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """mAP, mAUC and d' = sqrt(2) * Phi^-1(mAUC) over the classes that have positives (AudioSet convention)."""
    truth = (targets > 0.5).astype(np.float64)
    aps = [average_precision(scores[:, c], truth[:, c]) for c in range(scores.shape[1])]
    aucs = [roc_auc(scores[:, c], truth[:, c]) for c in range(scores.shape[1])]
    mean_ap, mean_auc = float(np.nanmean(aps)), float(np.nanmean(aucs))
    return {"mAP": mean_ap, "mAUC": mean_auc, "d_prime": float(math.sqrt(2.0) * norm.ppf(min(mean_auc, 1 - 1e-12)))}


def frame_f1(probabilities: np.ndarray, targets: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Micro and macro F1 of thresholded frame probabilities [N, T, C] against binary frame targets."""
    predicted, truth = probabilities > threshold, targets > 0.5
    axes = tuple(range(predicted.ndim - 1))
    tp = (predicted & truth).sum(axis=axes)
    fp = (predicted & ~truth).sum(axis=axes)
    fn = (~predicted & truth).sum(axis=axes)
    per_class = np.where(2 * tp + fp + fn > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), np.nan)
    micro = 2 * tp.sum() / max(2 * tp.sum() + fp.sum() + fn.sum(), 1)
    return {"frame_micro_f1": float(micro), "frame_macro_f1": float(np.nanmean(per_class)) if np.isfinite(per_class).any() else 0.0}


__all__ = ["accuracy", "average_precision", "frame_f1", "multilabel_metrics", "roc_auc"]
