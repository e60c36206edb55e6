"""Training of the baseline (BCE) and of the PICNN energy (argmin loss or max-margin).

All three run through :class:`icnn.learn.Trainer` (Adam, seeded mini-batches, tqdm); after
every epoch the model is scored on the validation split (``threshold_metric`` at its best
threshold) and the best epoch's weights are kept (early stopping with ``patience``).

A warm-started PICNN (``init_from_ff``, Proposition 2) first gets a trained baseline (a
checkpoint, or trained here on the same split), starts as an energy whose argmin is that
baseline's sigmoid output, is scored as epoch 0, and is then fine-tuned; epoch 0 competes in the
model selection, so the validation score never falls below the baseline's starting point.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from icnn.data import MultilabelData

from .config import MultilabelConfig
from .entropy_weight import EntropyWeighted, fold_entropy_weight
from .frozen_context import PrecomputedContext, precompute_context
from .inference import label_scores, picnn_prediction
from .metrics import best_threshold
from .models import FeedForward, build_picnn, feedforward_metadata, load_feedforward
from .warm_start import picnn_from_feedforward

# keeps log(y) finite where the argmin sits on a face of the box
_BCE_EPS = 1e-6
# a small training set is cut into about this many mini-batches an epoch
MIN_BATCHES = 8


def effective_batch_size(config: MultilabelConfig, n_train: int) -> int:
    """The mini-batch size a run trains with: ``config.batch_size``, lowered on small sets.

    ``min(batch_size, ceil(n_train / MIN_BATCHES))``, at least 2, then raised by the fewest
    examples that leave no batch of a single example (the feed-forward net's BatchNorm cannot
    train on one; the last batch of an epoch holds the remainder).

    The step budget of a run is ``epochs`` times the mini-batches per epoch: at the default 128
    a training set of 255 examples (yeast's small-data protocol) gets 2 steps an epoch, 60 in 30
    epochs, and the net stops improving only because the epochs run out (issue 18: every seed's
    best epoch was the last; with batches of ``ceil(n / 8)`` its test example F1 rose from
    0.535 to 0.598, and emotions' (150) from 0.621 to 0.654). Sets of ``8 * batch_size``
    examples or more (BibTeX, yeast, scene) keep the batch size as given, unless their last
    batch would hold a single example.
    """
    size = max(2, min(config.batch_size, math.ceil(n_train / MIN_BATCHES)))
    while size < n_train and n_train % size == 1:
        size += 1
    return size


def build_model(config: MultilabelConfig, x_dim: int, n_labels: int) -> nn.Module:
    """The model named by ``config.model``, freshly initialised from ``torch``'s global RNG."""
    if config.model == "ff":
        if len(config.ff_dropout) != 1:
            raise ValueError(f"expected one ff_dropout to build the net (select_feedforward "
                             f"chooses among several), got {list(config.ff_dropout)}")
        return FeedForward(x_dim, n_labels, hidden=config.hidden,
                           dropout=config.ff_dropout[0])
    return build_picnn(x_dim, n_labels, hidden=(config.y_hidden,), x_hidden=(config.hidden,),
                       strong_convexity=config.strong_convexity)


def loss_function(config: MultilabelConfig, hidden_from: int | None = None
                  ) -> Callable[[nn.Module, tuple[Tensor, ...]], Tensor]:
    """``loss(model, (x, y_true)) -> scalar`` for the configured model and training mode.

    ``hidden_from``: the inputs are precomputed contexts ``[x, u_1]`` whose columns from this
    index on are the x-path output ``u_1``; dropout then acts on ``u_1`` only (as the
    baseline's dropout on its hidden layer) instead of on the input features.
    """
    if config.model == "ff":
        def ff_loss(model: nn.Module, batch: tuple[Tensor, ...]) -> Tensor:
            x, y_true = batch
            return F.binary_cross_entropy_with_logits(model(x), y_true)

        return ff_loss

    solver = config.inference_solver

    def drop(model: nn.Module, x: Tensor) -> Tensor:
        if not config.dropout:
            return x
        if hidden_from is None:
            return F.dropout(x, config.dropout, training=model.training)
        hidden = F.dropout(x[:, hidden_from:], config.dropout, training=model.training)
        return torch.cat([x[:, :hidden_from], hidden], dim=1)

    if config.training == "max-margin":
        import icnn

        def margin_loss(model: nn.Module, batch: tuple[Tensor, ...]) -> Tensor:
            x, y_true = batch
            return icnn.losses.max_margin(model, drop(model, x), y_true, margin=config.margin,
                                          solver=solver,
                                          solver_options={"max_iter": config.solver_iters})

        return margin_loss

    def argmin_loss(model: nn.Module, batch: tuple[Tensor, ...]) -> Tensor:
        x, y_true = batch
        y_hat = picnn_prediction(model, drop(model, x), solver=solver,
                                 iterations=config.solver_iters,
                                 differentiable=config.differentiable)
        if config.loss == "mse":
            return F.mse_loss(y_hat, y_true)
        if config.loss == "f1":
            return 1.0 - soft_example_f1(y_hat, y_true)
        return F.binary_cross_entropy(y_hat.clamp(_BCE_EPS, 1 - _BCE_EPS), y_true)

    return argmin_loss


def soft_example_f1(y_hat: Tensor, y_true: Tensor) -> Tensor:
    """Example F1 with the relaxed labels ``y_hat in [0, 1]`` as soft decisions, batch mean.

    Per example ``2 <y_hat, y> / (sum y_hat + sum y)`` (0 when both sums are 0): the paper's
    BibTeX metric made differentiable, a loss on the argmin like the BCE (Section 5.2).
    """
    overlap = (y_hat * y_true).sum(-1)
    total = y_hat.sum(-1) + y_true.sum(-1)
    return (2 * overlap / total.clamp_min(1e-6)).mean()


class BestOnValidation:
    """Evaluation hook: score the validation split each epoch and remember the best weights.

    Calling it returns ``{"val_<metric>": score, "val_threshold": t}`` where ``t`` is the best
    threshold on the validation split; :meth:`restore` loads the weights of the best epoch.
    """

    def __init__(self, config: MultilabelConfig, validation: MultilabelData,
                 log: Callable[[str], None] | None = None, features: Tensor | None = None
                 ) -> None:
        self.config = config
        self.validation = validation
        self.features = validation.features if features is None else features
        self.log = log
        self.best_score = -float("inf")
        self.best_epoch = 0
        self.best_state: dict[str, Tensor] | None = None
        self.epoch = 0

    @property
    def key(self) -> str:
        """The name of the validation metric, ``val_<threshold_metric>``."""
        return f"val_{self.config.threshold_metric}"

    def __call__(self, model: nn.Module) -> dict[str, float]:
        """The trainer's evaluation hook: count the epoch and :meth:`score` the model."""
        self.epoch += 1
        return self.score(model)

    def initial(self, model: nn.Module) -> dict[str, float]:
        """Score the starting point as epoch 0 (before any training step)."""
        self.epoch = 0
        return {"epoch": 0, **self.score(model)}

    def score(self, model: nn.Module) -> dict[str, float]:
        """Validation scores of ``model`` at its best threshold; keeps the best weights so far."""
        scores = label_scores(model, self.features, solver=self.config.inference_solver,
                              iterations=self.config.solver_iters)
        choice = best_threshold(scores, self.validation.labels, self.config.threshold_metric)
        # Hamming loss is lower-is-better; compare on its negation
        score = -choice.score if self.config.threshold_metric == "hamming" else choice.score
        if score > self.best_score:
            self.best_score, self.best_epoch = score, self.epoch
            self.best_state = copy.deepcopy(model.state_dict())
        if self.log is not None:
            self.log(f"epoch {self.epoch:3d}  {self.key} {choice.score:.4f} "
                     f"(threshold {choice.threshold:.2f})  best {abs(self.best_score):.4f} "
                     f"@ epoch {self.best_epoch}")
        return {self.key: score, "val_threshold": choice.threshold}

    def restore(self, model: nn.Module) -> None:
        """Load the best weights seen into ``model`` (no-op before any score)."""
        if self.best_state is not None:
            model.load_state_dict(self.best_state)


def baseline_config(config: MultilabelConfig) -> MultilabelConfig:
    """The ``--model ff`` run a warm-started PICNN starts from (same data, split and seed)."""
    return dataclasses.replace(config, model="ff", epochs=config.ff_epochs, lr=config.ff_lr,
                               patience=config.ff_patience, dropout=0.0, out=f"{config.out}/ff")


def select_feedforward(config: MultilabelConfig, train: MultilabelData,
                       validation: MultilabelData, log: Callable[[str], None] | None = None
                       ) -> tuple[FeedForward, list[dict[str, float]], int, list[dict[str, float]]]:
    """Train the feed-forward net once per ``config.ff_dropout`` value; keep the best on validation.

    Every candidate is :func:`fit` from the same seed (same split, initialisation and batch
    order); the first in the grid wins ties.

    Returns:
        the chosen net, its history and best epoch, and the selection: one
        ``{"dropout", "val_score", "best_epoch", "chosen"}`` per candidate (``val_score`` the
        threshold metric's value, lower-is-better for Hamming; ``chosen`` True on one).
    """
    best = None
    selection = []
    for dropout in config.ff_dropout:
        candidate = dataclasses.replace(config, ff_dropout=(dropout,))
        if log is not None and len(config.ff_dropout) > 1:
            log(f"feed-forward net, dropout {dropout} (chosen on validation among "
                f"{list(config.ff_dropout)})")
        model, history, epoch = fit(candidate, train, validation, log)
        score = next(r[f"val_{config.threshold_metric}"] for r in history
                     if r.get("epoch") == epoch)
        selection.append({"dropout": dropout, "val_score": abs(score), "best_epoch": epoch,
                          "chosen": False})
        if best is None or score > best[0]:
            best = (score, model, history, epoch, len(selection) - 1)
    assert best is not None  # ff_dropout is never empty (MultilabelConfig checks)
    _, model, history, epoch, chosen = best
    selection[chosen]["chosen"] = True
    if log is not None and len(config.ff_dropout) > 1:
        log(f"feed-forward net: dropout {model.config['dropout']} chosen on validation")
    return model, history, epoch, selection


def load_baseline(config: MultilabelConfig, x_dim: int, n_labels: int) -> FeedForward:
    """The baseline of ``config.ff_checkpoint``, after checking it fits this run.

    Raises:
        ValueError: if its sizes differ, or its seed does (another seed holds out another
            validation split, which the baseline may have trained on).
    """
    ff = load_feedforward(config.ff_checkpoint)
    expected = {"x_dim": x_dim, "n_labels": n_labels, "hidden": config.hidden}
    found = {k: ff.config[k] for k in expected}
    if found != expected:
        raise ValueError(f"expected a baseline with {expected} in {config.ff_checkpoint}, "
                         f"got {found}")
    metadata = feedforward_metadata(config.ff_checkpoint)
    if metadata.get("seed") != config.seed:
        raise ValueError(f"expected a baseline trained with seed {config.seed} (the same "
                         f"validation split) in {config.ff_checkpoint}, got seed "
                         f"{metadata.get('seed')!r}")
    return ff


def convex_path_groups(picnn: nn.Module, z_lr: float) -> list[dict]:
    """Adam parameter groups.

    The y-path hidden layer (``y_layers[0]``, ``u_maps[0]``, ``z_layers``: the label-interaction part a warm
    start adds) at ``z_lr``; the rest, which holds the baseline, at the trainer's learning rate.
    """
    convex = [*picnn.y_layers[0].parameters(), *picnn.u_maps[0].parameters(),
              *picnn.z_layers.parameters()]
    ids = {id(p) for p in convex}
    rest = [p for p in picnn.parameters() if id(p) not in ids]
    return [{"params": rest}, {"params": convex, "lr": z_lr}]


def starting_baseline(config: MultilabelConfig, train: MultilabelData,
                      validation: MultilabelData, log: Callable[[str], None] | None = None
                      ) -> FeedForward:
    """The feed-forward net a warm-started PICNN starts from.

    ``config.ff_checkpoint``, or one trained here on the same split (:func:`baseline_config`).
    """
    if config.ff_checkpoint is not None:
        return load_baseline(config, train.n_features, train.n_labels)
    if log is not None:
        log("warm start: training the feed-forward baseline first")
    ff, _, _, _ = select_feedforward(baseline_config(config), train, validation, log)
    return ff


def fit(config: MultilabelConfig, train: MultilabelData, validation: MultilabelData,
        log: Callable[[str], None] | None = None, baseline: FeedForward | None = None
        ) -> tuple[nn.Module, list[dict[str, float]], int]:
    """Train the configured model; return it (best validation epoch), the history, that epoch.

    A feed-forward net with several ``ff_dropout`` values is :func:`select_feedforward`'s choice.
    Seeds torch before building the model, so a run is reproducible from ``config.seed``. With
    a warm start the history begins with the epoch-0 record of the starting point, and the
    returned epoch may be 0 (the baseline-equivalent energy was best on validation).
    ``baseline``: the warm start's feed-forward net when the caller already has it
    (:func:`starting_baseline`); None obtains it here.
    """
    from icnn.learn import Trainer, TrainerConfig, seed_everything

    if config.model == "ff" and len(config.ff_dropout) > 1:  # one fit per candidate
        model, history, epoch, _ = select_feedforward(config, train, validation, log)
        return model, history, epoch
    initial = None
    if config.warm_start:
        ff = baseline if baseline is not None else starting_baseline(config, train, validation,
                                                                     log)
        seed_everything(config.seed)
        model = picnn_from_feedforward(ff.eval(), config.y_hidden, config.z_scale,
                                       config.strong_convexity, config.entropy_weight)
    else:
        seed_everything(config.seed)
        model = build_model(config, train.n_features, train.n_labels)
    trained, features, val_features, hidden_from = model, train.features, None, None
    if config.warm_start and config.freeze_x_path:
        trained, hidden_from = PrecomputedContext(model), train.n_features
        features = precompute_context(model, train.features)
        val_features = precompute_context(model, validation.features)
    weighted = config.model == "picnn" and config.entropy_weight != 1.0
    if weighted:
        trained = EntropyWeighted(trained, config.entropy_weight)
    parameters = None
    if config.warm_start and config.z_lr is not None:
        parameters = convex_path_groups(model, config.z_lr)
    hook = BestOnValidation(config, validation, log, features=val_features)
    if config.warm_start:
        initial = hook.initial(trained)
    trainer = Trainer(
        trained, loss_function(config, hidden_from),
        TrainerConfig(epochs=config.epochs, batch_size=effective_batch_size(config,
                                                                            train.n_examples),
                      lr=config.lr,
                      weight_decay=config.weight_decay, seed=config.seed,
                      monitor=hook.key, mode="max", patience=config.patience or None,
                      progress=config.progress),
        eval_fn=hook, parameters=parameters,
    )
    history = trainer.fit((features, train.labels))
    hook.restore(trained)
    if weighted:
        fold_entropy_weight(model, config.entropy_weight)
    model.requires_grad_(True)
    model.eval()
    if initial is not None:
        history = [initial, *history]
    return model, history, hook.best_epoch
