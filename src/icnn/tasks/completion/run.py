"""One completion experiment: load images, train each variant, write metrics and the figure."""

from __future__ import annotations

import json
import platform
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from ...checkpoint import atomic_write, save
from ...data.images import load_images
from .data import CompletionData, CompletionSplit, hold_out, make_completion_data
from .ensemble import CompletionEnsemble
from .figure import save_completions_figure
from .train import (
    CompletionConfig,
    CompletionResult,
    mean_start,
    paper_mse,
    predict,
    train_completion,
)

# The paper's Olivetti table (test MSE, 0-255 units; reference notes §4.3).
PAPER_MSE = {"bundle_entropy": 833.0, "gd": 872.0, "nonconvex": 850.9}


@dataclass
class CompletionRun:
    """Where the data come from and where the results go.

    Attributes:
        images: Olivetti ``.mat`` or ``.npy`` ``(N, H, W)`` in ``[0, 1]``.
        n_train: the first ``n_train`` images train, the rest test.
        out: output directory.
        mask: task spec (``"left-half"`` or a pixel mask, see ``data.parse_mask``).
        show: test faces drawn in ``completions.png`` (evenly spaced over the test set).
        seed: seeds the random masks.
        validation: hold out the last this many training images as a validation set
            (:func:`icnn.tasks.completion.data.hold_out`; 0: train on all ``n_train``).
        ensemble: members per variant (seeds ``seed``, ``seed + 1``, ...); above 1 the variant's
            prediction is the argmin of their mean energy
            (:class:`icnn.tasks.completion.ensemble.CompletionEnsemble`).
    """

    images: Path
    n_train: int = 350
    out: Path = Path("runs/completion")
    mask: str = "left-half"
    show: int = 12
    seed: int = 0
    validation: int = 0
    ensemble: int = 1


def run_completion(spec: CompletionRun, configs: Sequence[CompletionConfig],
                   log: Callable[[str], Any] = lambda message: None) -> dict[str, Any]:
    """Train every config on the same data; write ``metrics.json`` and ``completions.png``.

    Returns:
        The summary written to ``metrics.json``: ``test_mse`` (method -> MSE), ``methods``
        (per method: test/train/validation MSE, wall seconds, seed, config, learning curve; with
        an ensemble, each member's record under ``members``), ``baselines`` (``mean_image``),
        ``paper_mse`` and the data description.
    """
    if not configs:
        raise ValueError("expected at least one method to train")
    if isinstance(spec.ensemble, bool) or not isinstance(spec.ensemble, int) or spec.ensemble < 1:
        raise ValueError(f"expected an ensemble size >= 1, got {spec.ensemble!r}")
    images = load_images(spec.images)
    data = make_completion_data(images, spec.n_train, spec.mask, seed=spec.seed)
    if spec.validation:
        data = hold_out(data, spec.validation)
    spec.out.mkdir(parents=True, exist_ok=True)
    baseline = mean_start(data.train).expand_as(data.test.y)
    if data.test.observed is not None:
        baseline = torch.where(data.test.observed, data.test.y, baseline)
    summary: dict[str, Any] = {
        "task": "completion",
        "images": str(spec.images), "n_images": int(images.shape[0]),
        "n_train": len(data.train), "n_test": len(data.test),
        "n_validation": 0 if data.validation is None else len(data.validation), "mask": spec.mask,
        "image_shape": list(images.shape[1:]), "x_shape": list(data.x_shape),
        "y_shape": list(data.y_shape),
        "metric": "mean over predicted test pixels of (255 * (y_hat - y))**2",
        "test_mse": {}, "methods": {}, "ensemble": spec.ensemble,
        "baselines": {"mean_image": paper_mse(baseline, data.test)},
        "paper_mse": PAPER_MSE if spec.mask == "left-half" else {},
        "torch": torch.__version__, "threads": torch.get_num_threads(),
        "machine": platform.machine(),
    }
    completions = {}
    for config in configs:
        record, test_completion = _train_method(data, config, spec, log)
        summary["test_mse"][config.variant] = record["test_mse"]
        summary["methods"][config.variant] = record
        completions[config.variant] = data.test.to_images(test_completion)
        _write_json(spec.out / "metrics.json", summary)
    # evenly spaced test faces (Olivetti: 10 per person, so this shows every test person)
    shown = torch.linspace(0, len(data.test) - 1, min(spec.show, len(data.test))).round().long()
    save_completions_figure(
        spec.out / "completions.png", data.test.observed_images(0.5)[shown],
        data.test.images[shown], {k: v[shown] for k, v in completions.items()},
        mse=summary["test_mse"],
        title=f"test completions ({spec.mask}); MSE in 0-255 units",
    )
    return summary


def _train_method(data: CompletionData, config: CompletionConfig, spec: CompletionRun,
                  log: Callable[[str], Any]) -> tuple[dict[str, Any], torch.Tensor]:
    """Train ``spec.ensemble`` members of one variant (seeds ``config.seed + k``).

    Returns the method's record for ``metrics.json`` (the ensemble's MSEs when it has several
    members, each member's own under ``members``) and its test completions.
    """
    method_dir = spec.out / config.variant
    members = []
    for k in range(spec.ensemble):
        member = replace(config, seed=config.seed + k)
        log(f"training {config.variant} (seed {member.seed}, {config.epochs} epochs)")
        out_dir = method_dir if spec.ensemble == 1 else method_dir / f"member{k}"
        result = train_completion(data, member, out_dir=out_dir)
        save(result.model.model, out_dir / "model.safetensors",
             metadata={"energy_scale": result.model.scale, "variant": config.variant,
                       "seed": member.seed, "test_mse": result.test_mse})
        members.append(result)
    records = [_result_record(result) for result in members]
    if spec.ensemble == 1:
        return records[0], members[0].test_completion
    ensemble = CompletionEnsemble([result.model for result in members])
    y0, inference = members[0].y0, config.inference

    def mse(split: CompletionSplit | None) -> float | None:
        if split is None:
            return None
        return paper_mse(predict(ensemble, split, y0, inference, config.eval_batch), split)

    test_completion = predict(ensemble, data.test, y0, inference, config.eval_batch)
    record = {
        "test_mse": paper_mse(test_completion, data.test), "train_mse": mse(data.train),
        "val_mse": mse(data.validation), "ensemble": spec.ensemble,
        "wall_seconds": sum(r["wall_seconds"] for r in records), "seed": config.seed,
        "config": records[0]["config"], "members": records,
    }
    return record, test_completion


def _result_record(result: CompletionResult) -> dict[str, Any]:
    return {
        "test_mse": result.test_mse, "train_mse": result.train_mse, "val_mse": result.val_mse,
        "wall_seconds": result.wall_seconds, "seed": result.config["seed"],
        "energy_scale": result.model.scale, "config": result.config,
        "curve": [{k: v for k, v in record.items() if k in ("epoch", "train_loss",
                                                             "val_mse", "test_mse")}
                  for record in result.history],
    }


def _write_json(path: Path, record: dict[str, Any]) -> None:
    text = json.dumps(record, indent=1)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))
