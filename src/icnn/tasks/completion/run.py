"""One completion experiment: load images, train each variant, write metrics and the figure."""

from __future__ import annotations

import json
import platform
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ...checkpoint import atomic_write, save
from ...data.images import load_images
from .data import make_completion_data
from .figure import save_completions_figure
from .train import CompletionConfig, mean_start, paper_mse, train_completion

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
    """

    images: Path
    n_train: int = 350
    out: Path = Path("runs/completion")
    mask: str = "left-half"
    show: int = 12
    seed: int = 0


def run_completion(spec: CompletionRun, configs: Sequence[CompletionConfig],
                   log: Callable[[str], Any] = lambda message: None) -> dict[str, Any]:
    """Train every config on the same data; write ``metrics.json`` and ``completions.png``.

    Returns:
        The summary written to ``metrics.json``: ``test_mse`` (method -> MSE), ``methods``
        (per method: test/train MSE, wall seconds, seed, config, learning curve), ``baselines``
        (``mean_image``), ``paper_mse`` and the data description.
    """
    if not configs:
        raise ValueError("expected at least one method to train")
    images = load_images(spec.images)
    data = make_completion_data(images, spec.n_train, spec.mask, seed=spec.seed)
    spec.out.mkdir(parents=True, exist_ok=True)
    baseline = mean_start(data.train).expand_as(data.test.y)
    if data.test.observed is not None:
        baseline = torch.where(data.test.observed, data.test.y, baseline)
    summary: dict[str, Any] = {
        "task": "completion",
        "images": str(spec.images), "n_images": int(images.shape[0]),
        "n_train": len(data.train), "n_test": len(data.test), "mask": spec.mask,
        "image_shape": list(images.shape[1:]), "x_shape": list(data.x_shape),
        "y_shape": list(data.y_shape),
        "metric": "mean over predicted test pixels of (255 * (y_hat - y))**2",
        "test_mse": {}, "methods": {},
        "baselines": {"mean_image": paper_mse(baseline, data.test)},
        "paper_mse": PAPER_MSE if spec.mask == "left-half" else {},
        "torch": torch.__version__, "threads": torch.get_num_threads(),
        "machine": platform.machine(),
    }
    completions = {}
    for config in configs:
        log(f"training {config.variant} (seed {config.seed}, {config.epochs} epochs)")
        method_dir = spec.out / config.variant
        result = train_completion(data, config, out_dir=method_dir)
        save(result.model.model, method_dir / "model.safetensors",
             metadata={"energy_scale": result.model.scale, "variant": config.variant,
                       "test_mse": result.test_mse})
        summary["test_mse"][config.variant] = result.test_mse
        summary["methods"][config.variant] = {
            "test_mse": result.test_mse, "train_mse": result.train_mse,
            "wall_seconds": result.wall_seconds, "seed": config.seed,
            "energy_scale": result.model.scale, "config": result.config,
            "curve": [{k: v for k, v in record.items() if k in ("epoch", "train_loss",
                                                                 "test_mse")}
                      for record in result.history],
        }
        completions[config.variant] = data.test.to_images(result.test_completion)
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


def _write_json(path: Path, record: dict[str, Any]) -> None:
    text = json.dumps(record, indent=1)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))
