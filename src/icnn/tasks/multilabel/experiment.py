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
    recorded_path,
    train_validation_split,
)

from .baselines import BaselineResult, require_sklearn, run_baselines
from .config import MultilabelConfig
from .inference import label_scores
from .metrics import LOWER_IS_BETTER, best_threshold, multilabel_scores
from .models import FeedForward, count_parameters, load_feedforward, save_feedforward
from .training import effective_batch_size, fit, select_feedforward, starting_baseline

__all__ = ["CHECKPOINT", "compare_on_validation", "load_data", "load_feedforward",
           "resolve_label_count", "run_experiment", "save_model", "score_feedforward",
           "standardize"]

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
    """``(train, validation, test)``; validation is ``val_fraction`` of the (subset) train file.

    With ``max_train`` the training file is first cut to a random subset of that many examples
    (seeded by ``config.seed``, kept in file order), the small-data protocol.
    """
    n_labels = resolve_label_count(config.train, config.labels)
    train = load_multilabel_arff(config.train, n_labels)
    test = load_multilabel_arff(config.test, n_labels)
    if train.n_features != test.n_features:
        raise ValueError(f"expected the train and test files to have the same features, got "
                         f"{train.n_features} and {test.n_features}")
    if config.max_train is not None and config.max_train < train.n_examples:
        # a seeded random subset, not the first rows: Mulan's training files are ordered by label
        generator = torch.Generator().manual_seed(config.seed)
        keep = torch.randperm(train.n_examples, generator=generator)[:config.max_train]
        train = train.subset(keep.sort().values)
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


def score_feedforward(ff: FeedForward, validation: MultilabelData, test: MultilabelData,
                      metric: str) -> BaselineResult:
    """The feed-forward net as a baseline row: threshold on validation, scores on test."""
    started = time.perf_counter()
    choice = best_threshold(label_scores(ff, validation.features), validation.labels, metric)
    predictions = label_scores(ff, test.features) >= choice.threshold
    return BaselineResult("ff", {"hidden": ff.config["hidden"], "dropout": ff.config["dropout"]},
                          choice.threshold, choice.score,
                          multilabel_scores(test.labels, predictions),
                          time.perf_counter() - started)


def compare_on_validation(model_name: str, model_val_score: float, model_test: dict[str, float],
                          baselines: dict[str, BaselineResult], metric: str) -> dict[str, Any]:
    """Which of the run's model and the measured baselines scores best on validation.

    Returns:
        ``{"best_on_validation": name, "model_beats_baselines_on_validation": bool,
        "best_baseline": name or None, "best_baseline_val_score": float or None,
        "selected": {"name", "val_score", test scores}, "verdict": one sentence}``. The model
        wins ties; ``selected`` is the validation-chosen predictor's test scores (the one to
        ship), which is a baseline's when the model lost on validation.
    """
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    rows = {name: (result.val_score, result.test) for name, result in baselines.items()}
    best_baseline = max(rows, key=lambda name: sign * rows[name][0], default=None)
    beats = best_baseline is None or sign * model_val_score >= sign * rows[best_baseline][0]
    chosen = model_name if beats else best_baseline
    val_score, test = (model_val_score, model_test) if beats else rows[best_baseline]
    if best_baseline is None:
        verdict = "no baseline measured"
    elif beats:
        verdict = (f"{model_name} is at least as good as every measured baseline on validation "
                   f"({metric} {model_val_score:.4f} vs best baseline {best_baseline} "
                   f"{rows[best_baseline][0]:.4f})")
    else:
        verdict = (f"{model_name} is worse than baseline {best_baseline} on validation ({metric} "
                   f"{model_val_score:.4f} < {rows[best_baseline][0]:.4f}): use {best_baseline}; "
                   f"'selected' holds its test scores")
    return {
        "best_on_validation": chosen,
        "model_beats_baselines_on_validation": beats,
        "best_baseline": best_baseline,
        "best_baseline_val_score": None if best_baseline is None else rows[best_baseline][0],
        "selected": {"name": chosen, "val_score": val_score, **test},
        "verdict": verdict,
    }


def run_experiment(config: MultilabelConfig, log: Callable[[str], None] = print
                   ) -> dict[str, Any]:
    """Train and evaluate ``config``; write ``metrics.json``, the checkpoint and ``history.json``.

    The baselines of ``config.baselines`` (and, for a warm-started PICNN, the feed-forward net it
    starts from, as ``"ff"``) are measured on the same split, tuned on validation only.

    Returns:
        the dictionary written to ``metrics.json``: test ``macro_f1``, ``micro_f1``,
        ``example_f1``, ``hamming``; the validation ``threshold`` and its ``val_score``;
        ``best_epoch``, ``epochs_run``, ``wall_time_s``, ``seed``, sizes and ``config``;
        ``baselines`` (per baseline: test scores, ``val_score``, ``threshold``, ``hyper``) and
        the validation comparison of :func:`compare_on_validation`.
    """
    require_sklearn(config.baselines)
    started = time.perf_counter()
    previous_threads = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    try:
        train, validation, test = load_data(config)
        log(f"data: {train.n_examples} train / {validation.n_examples} validation / "
            f"{test.n_examples} test, {train.n_features} features, {train.n_labels} labels")
        baselines: dict[str, BaselineResult] = {}
        ff = None
        selection = None
        if config.warm_start:
            ff = starting_baseline(config, train, validation, log)
            baselines["ff"] = score_feedforward(ff, validation, test, config.threshold_metric)
        if config.model == "ff":
            model, history, best_epoch, selection = select_feedforward(config, train,
                                                                       validation, log)
        else:
            model, history, best_epoch = fit(config, train, validation, log, baseline=ff)
        solver, iters = config.inference_solver, config.solver_iters
        val_scores = label_scores(model, validation.features, solver=solver, iterations=iters)
        choice = best_threshold(val_scores, validation.labels, config.threshold_metric)
        inference_started = time.perf_counter()
        test_scores = label_scores(model, test.features, solver=solver, iterations=iters)
        inference_s = time.perf_counter() - inference_started
        scores = multilabel_scores(test.labels, test_scores >= choice.threshold)
        model_done = time.perf_counter()
        baselines.update(run_baselines(config.baselines, train, validation, test,
                                       config.threshold_metric, config.seed, log))
    finally:
        torch.set_num_threads(previous_threads)
    # the model's own time (the baselines report theirs as fit_s)
    wall = model_done - started
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
        "batch_size_effective": effective_batch_size(config, train.n_examples),
        # --model ff: the dropout chosen on validation, and every candidate's score
        "ff_dropout_selection": selection,
        "inference": "sigmoid" if config.model == "ff" else f"argmin:{solver}x{iters}",
        # data paths as given, or relative to the repository / $ICNN_DATA_DIR (recorded_path)
        "config": {**dataclasses.asdict(config), "train": recorded_path(config.train),
                   "test": recorded_path(config.test)},
        # --max-train as used: the training file's size when the request exceeds it
        "max_train_effective": (None if config.max_train is None
                                else train.n_examples + validation.n_examples),
        "baselines": {name: result.as_dict() for name, result in baselines.items()},
        **compare_on_validation(config.model, choice.score, scores, baselines,
                                config.threshold_metric),
        # the top-level test scores are always the model's; "shipped" names the predictor
        # validation selects (a baseline's test scores are then in "selected")
        "scores_of": config.model,
    }
    metrics["shipped"] = metrics["selected"]["name"]
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    save_model(model, out / CHECKPOINT, {"threshold": choice.threshold, "seed": config.seed})
    (out / "history.json").write_text(json.dumps(history, indent=1))
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    log(f"test ({config.model}): " + "  ".join(f"{k} {scores[k]:.4f}" for k in scores)
        + f"  (threshold {choice.threshold:.2f}, {wall:.1f} s)")
    log(f"validation: {metrics['verdict']}")
    return metrics
