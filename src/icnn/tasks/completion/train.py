"""Training a conv PICNN for completion by differentiating through its inference.

The three variants of the paper's Olivetti table (Section 6.3):

=================  ====================================  ========================
variant            model                                 inference (train + test)
=================  ====================================  ========================
``bundle_entropy``  ConvPICNN, convex in y                bundle entropy, implicit
``gd``              ConvPICNN, convex in y                unrolled momentum GD
``nonconvex``       ConvPICNN(convex=False) (ablation)    unrolled momentum GD
``anchored``        (w/2)||y - g(x)||^2 + ConvPICNN       unrolled momentum GD from g(x)
``averaged``        ConvPICNN, convex in y                bundle entropy, implicit
=================  ====================================  ========================

``anchored`` (:class:`icnn.tasks.completion.anchor.AnchoredEnergy`) needs an anchor ``g``, a
baseline predictor, and is trained on its out-of-fold values. ``averaged`` trains exactly as
``bundle_entropy``; its completions are averaged with a baseline's afterwards
(:mod:`icnn.tasks.completion.blend`, the weight chosen by the cross-fit).

With a validation split the weights of the evaluated epoch with the lowest validation MSE are
kept (selection on validation; the test set is never used to choose).

Loss: the mean squared error of ``ŷ`` on the predicted pixels; reported in the paper's units,
``mean (255 (ŷ - y))^2``. Adam, mini-batches drawn by :class:`icnn.learn.Trainer`, start point
``y0`` = the mean training image (the authors' choice). The test set is evaluated every
``eval_every`` epochs for the learning curve only; the reported number is the final model's.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ...learn.trainer import Trainer, TrainerConfig, seed_everything
from ...nn.conv import ConvPICNN
from .anchor import AnchoredEnergy
from .baselines import Anchor
from .data import (
    PIXEL_SCALE,
    CompletionData,
    CompletionSplit,
    concatenate,
    mirrored,
    paper_mse,
    per_example_mse,
    shifted,
    subset,
)
from .energy import CompletionEnergy
from .ensemble import CompletionEnsemble
from .inference import InferenceConfig, complete

VARIANTS = ("bundle_entropy", "gd", "nonconvex", "anchored", "averaged")
__all__ = ["PIXEL_SCALE", "VARIANTS", "CompletionConfig", "CompletionResult", "build_model",
           "mean_start", "paper_mse", "predict", "train_completion"]


@dataclass
class CompletionConfig:
    """Hyper-parameters of one variant (the CLI maps its flags onto these one to one).

    Attributes:
        variant: ``"bundle_entropy"``, ``"gd"``, ``"nonconvex"``, ``"anchored"`` or
            ``"averaged"`` (trained as ``"bundle_entropy"``).
        anchor_weight: ``w``, the anchored energy's quadratic weight (its strong convexity).
        channels, kernel_sizes, strides, dense: the ConvPICNN's geometry (paper: DQN-like
            ``32@8x8/4, 64@4x4/2, 64@3x3/1``, dense 512).
        constraint: how ``W^(z) >= 0`` is kept (``"project"`` is the paper's clipping).
        energy_scale: initial value of the learned positive factor of the energy
            (:class:`icnn.tasks.completion.energy.CompletionEnergy`).
        inner_steps: bundle-entropy subproblems or unrolled GD steps (the paper: five).
        inner_lr, momentum: of the GD steps.
        epochs, batch_size, lr, seed: the outer Adam loop (authors: 50 epochs of 5 batches of
            70 = 250 steps, lr 1e-3; here by default 30 epochs of the 700 flipped-augmented
            images = 300 steps).
        schedule, weight_decay: of the Adam loop (:class:`icnn.learn.TrainerConfig`).
        flip: add the left-right mirror of every training image (doubles the training set;
            in the left-half task it swaps the roles of the two halves).
        average: evaluate and keep an exponential moving average of the weights with this
            decay (:class:`icnn.learn.averaging.WeightAverage`; None: the last weights).
        max_shift: translate every training example of a mini-batch by a random
            ``(down, right)`` in ``[-max_shift, max_shift]^2`` pixels (0: no translation).
        eval_every: epochs between test (and validation) evaluations (learning curves only;
            no selection).
        eval_batch: examples per inference batch at evaluation.
        progress: show a progress bar.
    """

    variant: str = "bundle_entropy"
    anchor_weight: float = 10.0
    channels: tuple[int, ...] = (32, 64, 64)
    kernel_sizes: tuple[int, ...] = (8, 4, 3)
    strides: tuple[int, ...] = (4, 2, 1)
    dense: tuple[int, ...] = (512,)
    constraint: str = "project"
    energy_scale: float = 100.0
    inner_steps: int = 5
    inner_lr: float = 0.01
    momentum: float = 0.9
    epochs: int = 30
    batch_size: int = 70
    lr: float = 1e-3
    schedule: str = "cosine"
    weight_decay: float = 0.0
    flip: bool = True
    max_shift: int = 0
    average: float | None = None
    seed: int = 0
    eval_every: int = 10
    eval_batch: int = 50
    progress: bool = True

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {self.variant!r}")
        if isinstance(self.max_shift, bool) or not isinstance(self.max_shift, int) \
                or self.max_shift < 0:
            raise ValueError(f"max_shift must be an int >= 0, got {self.max_shift!r}")
        if isinstance(self.anchor_weight, bool) or not isinstance(self.anchor_weight, int | float) \
                or not math.isfinite(self.anchor_weight) or self.anchor_weight <= 0:
            raise ValueError(f"anchor_weight must be a finite number > 0, got "
                             f"{self.anchor_weight!r}")
        self.inference  # noqa: B018 (validates the inference settings now)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> CompletionConfig:
        """The config a run recorded in ``metrics.json`` (``methods[m]["config"]``).

        JSON lists become tuples again.
        """
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in record.items()})

    @property
    def inference(self) -> InferenceConfig:
        """The inference settings of this variant (method, steps, step size, momentum)."""
        method = "bundle_entropy" if self.variant in ("bundle_entropy", "averaged") else "gd"
        return InferenceConfig(method=method, steps=self.inner_steps, lr=self.inner_lr,
                               momentum=self.momentum)


@dataclass
class CompletionResult:
    """What one trained variant gives.

    Attributes:
        model: the trained energy (its ``.model`` is the ConvPICNN).
        test_mse, train_mse: final MSE in the paper's 0-255 units.
        val_mse: final MSE on ``data.validation`` (None without a validation split).
        wall_seconds: training time (evaluations included).
        history: per-epoch records from the trainer (train_loss, and test_mse where evaluated).
        test_completion: ``(n_test, *y_shape)`` final test predictions.
        train_completion: ``(n_train, *y_shape)`` the final model's predictions of the
            training images (without their mirrors), which ``train_mse`` scores.
        y0: ``(1, *y_shape)`` the start point (mean training target; the anchored energy
            starts at its anchor instead).
        selected_epoch: with a validation split or ``keep_epoch``, the epoch whose weights
            were kept.
        val_errors: with ``keep_epoch`` and a validation split, ``(epochs, n_val)`` per-image
            validation MSE (0-255 units) after every epoch (with a ``validation_score``,
            ``(epochs, k, n_val)``: its candidates' errors); else None.
    """

    model: CompletionEnergy
    test_mse: float
    train_mse: float
    wall_seconds: float
    history: list[dict[str, float]]
    test_completion: Tensor
    train_completion: Tensor
    y0: Tensor
    val_mse: float | None = None
    config: dict[str, Any] = field(default_factory=dict)
    selected_epoch: int | None = None
    val_errors: Tensor | None = None


def build_model(data: CompletionData, config: CompletionConfig, anchor: Anchor | None = None,
                ) -> CompletionEnergy | AnchoredEnergy:
    """The conv PICNN of the paper's completion experiment for this data's shapes, scaled.

    For ``"anchored"`` wrapped with its anchor term.

    Raises:
        ValueError: ``"anchored"`` without an anchor, or an anchor for another variant.
    """
    if (config.variant == "anchored") != (anchor is not None):
        raise ValueError(f"expected an anchor exactly for the 'anchored' variant, got variant "
                         f"{config.variant!r} with anchor {type(anchor).__name__}")
    model = ConvPICNN(
        data.x_shape, data.y_shape, channels=config.channels, kernel_sizes=config.kernel_sizes,
        strides=config.strides, dense=config.dense, constraint=config.constraint,
        convex=config.variant != "nonconvex",
    )
    energy = CompletionEnergy(model, config.energy_scale)
    if anchor is None:
        return energy
    return AnchoredEnergy(energy, anchor, config.anchor_weight)


def mean_start(split: CompletionSplit) -> Tensor:
    """``(1, *y_shape)``: the per-pixel mean target over ``split`` (the authors' ``y0``)."""
    return split.y.mean(0, keepdim=True)


@torch.no_grad()
def predict(model: CompletionEnergy | CompletionEnsemble | AnchoredEnergy, split: CompletionSplit, y0: Tensor,
            inference: InferenceConfig, batch_size: int = 50) -> Tensor:
    """Completions ``(n, *y_shape)`` of every example of ``split`` (no graph)."""
    outputs = []
    for start in range(0, len(split), batch_size):
        index = torch.arange(start, min(start + batch_size, len(split)))
        outputs.append(_complete(model, subset(split, index), y0, inference,
                                 differentiable=False))
    return torch.cat(outputs)


def train_completion(data: CompletionData, config: CompletionConfig,
                     out_dir: str | Path | None = None, *, anchor: Anchor | None = None,
                     anchor_train: Tensor | None = None,
                     keep_epoch: int | None = None,
                     validation_score: Callable[[Tensor], Tensor] | None = None,
                     ) -> CompletionResult:
    """Train one variant on ``data.train`` and evaluate it on ``data.test``.

    With ``data.validation``, the validation MSE is computed after every epoch and the weights
    of the best epoch are kept (the test MSE only every ``eval_every`` epochs, for the curve).

    Args:
        data: completion pairs (see :func:`icnn.tasks.completion.data.make_completion_data`).
        config: the variant and its hyper-parameters.
        out_dir: where the trainer writes its per-epoch ``metrics.json`` / ``metrics.csv`` and
            checkpoints (None: nothing written).
        anchor: ``g`` of the ``"anchored"`` variant (None for the others).
        anchor_train: ``(n, *y_shape)`` anchor values for the training examples (the images,
            then their mirrors with ``flip``), e.g. out-of-fold
            (:func:`icnn.tasks.completion.baselines.cross_fitted`); None: ``g(x)``.
        keep_epoch: keep the weights after this epoch (in ``1..config.epochs``) instead of the
            best validation epoch (the epoch chosen by the cross-fit,
            :mod:`icnn.tasks.completion.crossfit`); every epoch is evaluated, and with
            ``data.validation`` the per-image validation errors of every epoch are returned in
            ``val_errors``. None: the best validation epoch, or the last without validation.
        validation_score: with ``keep_epoch``, maps a validation completion ``(n_val,
            *y_shape)`` to per-image errors ``(k, n_val)`` of ``k`` candidate predictors made
            from it (e.g. blends, :func:`icnn.tasks.completion.blend.blend_errors`);
            ``val_errors`` is then ``(epochs, k, n_val)``. None: the completion's own errors.

    Raises:
        ValueError: an anchor for another variant, ``anchor_train`` of the wrong shape, or with
            ``max_shift`` (shifted images have no precomputed anchor values), or ``keep_epoch``
            outside ``1..config.epochs``.
    """
    if keep_epoch is not None and (isinstance(keep_epoch, bool) or not isinstance(keep_epoch, int)
                                   or not 1 <= keep_epoch <= config.epochs):
        raise ValueError(f"expected an epoch to keep in [1, {config.epochs}], got {keep_epoch!r}")
    if validation_score is not None and keep_epoch is None:
        raise ValueError("expected keep_epoch with a validation_score (the scores of every epoch "
                         "are returned for a choice made outside), got keep_epoch None")
    seed_everything(config.seed)
    model = build_model(data, config, anchor)
    inference = config.inference
    train = concatenate(data.train, mirrored(data.train)) if config.flip else data.train
    y0 = mean_start(train)
    if anchor_train is not None:
        if tuple(anchor_train.shape) != tuple(train.y.shape):
            raise ValueError(f"expected anchor values for the training examples of shape "
                             f"{tuple(train.y.shape)}, got {tuple(anchor_train.shape)}")
        if config.max_shift:
            raise ValueError("expected max_shift 0 with precomputed anchor values, got "
                             f"{config.max_shift}")

    def loss_fn(model: CompletionEnergy | AnchoredEnergy, batch: tuple[Tensor, ...]) -> Tensor:
        (index,) = batch
        examples = subset(train, index)
        if config.max_shift:
            down, right = torch.randint(-config.max_shift, config.max_shift + 1, (2, len(index)))
            examples = shifted(examples, down, right)
        values = None if anchor_train is None else anchor_train[index]
        prediction = _complete(model, examples, y0, inference, differentiable=True,
                               anchor_values=values)
        predicted = examples.predicted
        error = (prediction - examples.y).square() * predicted
        return error.flatten(1).sum(1) / predicted.flatten(1).sum(1)

    best: dict[str, Any] = {"val_mse": math.inf, "state": None, "epoch": None}
    calls = [0]
    val_errors: list[Tensor] = []
    every_epoch = data.validation is not None or keep_epoch is not None

    def eval_fn(model: CompletionEnergy | AnchoredEnergy) -> dict[str, float]:
        calls[0] += 1
        metrics = {}
        if data.validation is not None:
            completion = predict(model, data.validation, y0, inference, config.eval_batch)
            metrics["val_mse"] = paper_mse(completion, data.validation)
            if keep_epoch is not None:
                val_errors.append(per_example_mse(completion, data.validation)
                                  if validation_score is None else validation_score(completion))
            elif metrics["val_mse"] < best["val_mse"]:
                best.update(val_mse=metrics["val_mse"], epoch=calls[0],
                            state=copy.deepcopy(model.state_dict()))
        if calls[0] == keep_epoch:
            best.update(epoch=calls[0], state=copy.deepcopy(model.state_dict()))
        if not every_epoch or calls[0] % config.eval_every == 0 \
                or calls[0] == config.epochs:
            completion = predict(model, data.test, y0, inference, config.eval_batch)
            metrics["test_mse"] = paper_mse(completion, data.test)
        return metrics

    trainer_config = TrainerConfig(
        epochs=config.epochs, batch_size=config.batch_size, lr=config.lr, seed=config.seed,
        schedule=config.schedule, weight_decay=config.weight_decay, average=config.average,
        eval_every=1 if every_epoch else config.eval_every,
        progress=config.progress, checkpoint_every=max(config.epochs, 1),
    )
    trainer = Trainer(model, loss_fn, trainer_config, out_dir=out_dir, eval_fn=eval_fn)
    started = time.perf_counter()
    history = trainer.fit((torch.arange(len(train)),))
    if best["state"] is not None:
        model.load_state_dict(best["state"])
    wall = time.perf_counter() - started
    test_completion = predict(model, data.test, y0, inference, config.eval_batch)
    train_completion_ = predict(model, data.train, y0, inference, config.eval_batch)
    val_mse = None
    if data.validation is not None:
        val_mse = paper_mse(predict(model, data.validation, y0, inference, config.eval_batch),
                            data.validation)
    return CompletionResult(
        model=model, test_mse=paper_mse(test_completion, data.test),
        train_mse=paper_mse(train_completion_, data.train), wall_seconds=wall, history=history,
        test_completion=test_completion, train_completion=train_completion_, y0=y0,
        config=_jsonable(asdict(config)), val_mse=val_mse,
        selected_epoch=best["epoch"], val_errors=torch.stack(val_errors) if val_errors else None,
    )


def _complete(model: CompletionEnergy | CompletionEnsemble | AnchoredEnergy,
              examples: CompletionSplit, y0: Tensor, inference: InferenceConfig, *,
              differentiable: bool, anchor_values: Tensor | None = None) -> Tensor:
    with torch.set_grad_enabled(differentiable):
        if isinstance(model, AnchoredEnergy):
            features = model.features(examples.x, anchor_values)
        else:
            features = model.features(examples.x)
    if isinstance(model, AnchoredEnergy):
        start = model.start(features)
    else:
        start = y0.expand(len(examples), *y0.shape[1:])
    return complete(model, features, start, inference, fixed=examples.fixed(),
                    differentiable=differentiable)


def _jsonable(config: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()
            if not (isinstance(v, float) and math.isnan(v))}
