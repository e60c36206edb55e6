"""One multi-label experiment end to end: load, split, train, pick the threshold, test, write.

The threshold is chosen on the validation split (held out of the training file), never on the
test set; the test file is read only for the final scores.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from icnn.data import (
    MultilabelData,
    label_count_from_xml,
    load_multilabel_arff,
    train_validation_split,
)

from .config import MultilabelConfig
from .inference import label_scores
from .metrics import best_threshold, multilabel_scores
from .models import FeedForward, count_parameters, load_feedforward, save_feedforward
from .training import fit

__all__ = ["CHECKPOINT", "load_data", "load_feedforward", "resolve_label_count", "run_experiment",
           "save_model", "standardize"]

CHECKPOINT = "model.safetensors"


def resolve_label_count(train_path: str | Path, labels: int | None) -> int:
    """``labels``, or the count in Mulan's ``<name>.xml`` beside ``<name>-train.arff``."""
    if labels is not None:
        return labels
    train_path = Path(train_path)
    stem = train_path.stem.removesuffix("-train").removesuffix("_train")
    xml = train_path.with_name(f"{stem}.xml")
    if not xml.is_file():
        raise ValueError(f"pass --labels: the number of labels is not given and there is no Mulan "
                         f"label file {xml} to read it from")
    return label_count_from_xml(xml)


def load_data(config: MultilabelConfig) -> tuple[MultilabelData, MultilabelData, MultilabelData]:
    """``(train, validation, test)``; validation is ``val_fraction`` of the (subset) train file."""
    n_labels = resolve_label_count(config.train, config.labels)
    train = load_multilabel_arff(config.train, n_labels)
    test = load_multilabel_arff(config.test, n_labels)
    if train.n_features != test.n_features:
        raise ValueError(f"expected the train and test files to have the same features, got "
                         f"{train.n_features} and {test.n_features}")
    if config.max_train is not None and config.max_train < train.n_examples:
        train = train.subset(torch.arange(config.max_train))
    train, validation = train_validation_split(train, config.val_fraction, config.seed)
    return standardize(train, validation, test)


def standardize(train: MultilabelData, *others: MultilabelData) -> tuple[MultilabelData, ...]:
    """Scale continuous features to zero mean and unit variance with the training statistics.

    Binary feature sets (BibTeX's bag of words) are returned unchanged, so they stay sparse;
    continuous ones (yeast, emotions, scene) are standardised column by column.
    """
    features = train.features
    if bool(((features == 0) | (features == 1)).all()):
        return (train, *others)
    mean = features.mean(0)
    std = features.std(0).clamp_min(1e-6)

    def scaled(data: MultilabelData) -> MultilabelData:
        return dataclasses.replace(data, features=(data.features - mean) / std)

    return tuple(scaled(data) for data in (train, *others))


def save_model(model: nn.Module, path: Path, metadata: dict[str, Any]) -> Path:
    """``icnn.save`` for the PICNN; :func:`save_feedforward` (config beside it) for the baseline."""
    if isinstance(model, FeedForward):
        return save_feedforward(model, path, metadata)
    import icnn

    return icnn.save(model, path, metadata=metadata)


def run_experiment(config: MultilabelConfig, log: Callable[[str], None] = print
                   ) -> dict[str, Any]:
    """Train and evaluate ``config``; write ``metrics.json``, the checkpoint and ``history.json``.

    Returns:
        the dictionary written to ``metrics.json``: test ``macro_f1``, ``micro_f1``,
        ``example_f1``, ``hamming``; the validation ``threshold`` and its ``val_score``;
        ``best_epoch``, ``epochs_run``, ``wall_time_s``, ``seed``, sizes and ``config``.
    """
    started = time.perf_counter()
    previous_threads = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    try:
        train, validation, test = load_data(config)
        log(f"data: {train.n_examples} train / {validation.n_examples} validation / "
            f"{test.n_examples} test, {train.n_features} features, {train.n_labels} labels")
        model, history, best_epoch = fit(config, train, validation, log)
        solver, iters = config.inference_solver, config.solver_iters
        val_scores = label_scores(model, validation.features, solver=solver, iterations=iters)
        choice = best_threshold(val_scores, validation.labels, config.threshold_metric)
        inference_started = time.perf_counter()
        test_scores = label_scores(model, test.features, solver=solver, iterations=iters)
        inference_s = time.perf_counter() - inference_started
        scores = multilabel_scores(test.labels, test_scores >= choice.threshold)
    finally:
        torch.set_num_threads(previous_threads)
    wall = time.perf_counter() - started
    metrics: dict[str, Any] = {
        **scores,
        "threshold": choice.threshold,
        "threshold_metric": config.threshold_metric,
        "val_score": choice.score,
        "best_epoch": best_epoch,
        "epochs_run": sum(1 for record in history if record.get("epoch", 1) >= 1),
        "initial_val_score": next((r[f"val_{config.threshold_metric}"] for r in history
                                   if r.get("epoch") == 0), None),
        "wall_time_s": round(wall, 2),
        "test_inference_s": round(inference_s, 2),
        "seed": config.seed,
        "torch_threads": config.threads or previous_threads,
        "n_train": train.n_examples, "n_validation": validation.n_examples,
        "n_test": test.n_examples, "n_features": train.n_features, "n_labels": train.n_labels,
        "n_parameters": count_parameters(model),
        "inference": "sigmoid" if config.model == "ff" else f"argmin:{solver}x{iters}",
        "config": dataclasses.asdict(config),
    }
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    save_model(model, out / CHECKPOINT, {"threshold": choice.threshold, "seed": config.seed})
    (out / "history.json").write_text(json.dumps(history, indent=1))
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    log("test: " + "  ".join(f"{k} {scores[k]:.4f}" for k in scores)
        + f"  (threshold {choice.threshold:.2f}, {wall:.1f} s)")
    return metrics
