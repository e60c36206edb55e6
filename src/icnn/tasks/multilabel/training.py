"""Training of the baseline (BCE) and of the PICNN energy (argmin loss or max-margin).

All three run through :class:`icnn.learn.Trainer` (Adam, seeded mini-batches, tqdm); after
every epoch the model is scored on the validation split (``threshold_metric`` at its best
threshold) and the best epoch's weights are kept (early stopping with ``patience``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch.nn.functional as F
from torch import Tensor, nn

from icnn.data import MultilabelData

from .config import MultilabelConfig
from .inference import label_scores, picnn_prediction
from .metrics import best_threshold
from .models import FeedForward, build_picnn

# keeps log(y) finite where the argmin sits on a face of the box
_BCE_EPS = 1e-6


def build_model(config: MultilabelConfig, x_dim: int, n_labels: int) -> nn.Module:
    """The model named by ``config.model``, freshly initialised from ``torch``'s global RNG."""
    if config.model == "ff":
        return FeedForward(x_dim, n_labels, hidden=config.hidden, dropout=config.dropout)
    return build_picnn(x_dim, n_labels, hidden=(config.y_hidden,), x_hidden=(config.hidden,),
                       strong_convexity=config.strong_convexity)


def loss_function(config: MultilabelConfig) -> Callable[[nn.Module, tuple[Tensor, ...]], Tensor]:
    """``loss(model, (x, y_true)) -> scalar`` for the configured model and training mode."""
    if config.model == "ff":
        def ff_loss(model: nn.Module, batch: tuple[Tensor, ...]) -> Tensor:
            x, y_true = batch
            return F.binary_cross_entropy_with_logits(model(x), y_true)

        return ff_loss

    solver = config.inference_solver

    def drop(model: nn.Module, x: Tensor) -> Tensor:
        return F.dropout(x, config.dropout, training=model.training) if config.dropout else x

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
        return F.binary_cross_entropy(y_hat.clamp(_BCE_EPS, 1 - _BCE_EPS), y_true)

    return argmin_loss


class BestOnValidation:
    """Evaluation hook: score the validation split each epoch and remember the best weights.

    Calling it returns ``{"val_<metric>": score, "val_threshold": t}`` where ``t`` is the best
    threshold on the validation split; :meth:`restore` loads the weights of the best epoch.
    """

    def __init__(self, config: MultilabelConfig, validation: MultilabelData,
                 log: Callable[[str], None] | None = None) -> None:
        self.config = config
        self.validation = validation
        self.log = log
        self.best_score = -float("inf")
        self.best_epoch = 0
        self.best_state: dict[str, Tensor] | None = None
        self.epoch = 0

    @property
    def key(self) -> str:
        return f"val_{self.config.threshold_metric}"

    def __call__(self, model: nn.Module) -> dict[str, float]:
        self.epoch += 1
        scores = label_scores(model, self.validation.features, solver=self.config.inference_solver,
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
        if self.best_state is not None:
            model.load_state_dict(self.best_state)


def fit(config: MultilabelConfig, train: MultilabelData, validation: MultilabelData,
        log: Callable[[str], None] | None = None) -> tuple[nn.Module, list[dict[str, float]], int]:
    """Train the configured model; return it (best validation epoch), the history, that epoch.

    Seeds torch before building the model, so a run is reproducible from ``config.seed``.
    """
    from icnn.learn import Trainer, TrainerConfig, seed_everything

    seed_everything(config.seed)
    model = build_model(config, train.n_features, train.n_labels)
    hook = BestOnValidation(config, validation, log)
    trainer = Trainer(
        model, loss_function(config),
        TrainerConfig(epochs=config.epochs, batch_size=config.batch_size, lr=config.lr,
                      weight_decay=config.weight_decay, seed=config.seed,
                      monitor=hook.key, mode="max", patience=config.patience or None,
                      progress=config.progress),
        eval_fn=hook,
    )
    history = trainer.fit((train.features, train.labels))
    hook.restore(model)
    model.eval()
    return model, history, hook.best_epoch

