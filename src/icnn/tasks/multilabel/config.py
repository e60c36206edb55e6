"""Every setting of one ``icnn multilabel`` run, one field per command-line flag."""

from __future__ import annotations

from dataclasses import dataclass

from .metrics import METRICS
from .models import MODELS

TRAININGS = ("argmin", "max-margin")
SOLVERS = ("bundle_entropy", "pgd", "lbfgs", "bundle")
DIFFERENTIABLE = ("implicit", "unroll")
LOSSES = ("bce", "mse")


@dataclass
class MultilabelConfig:
    """One multi-label run: data, model, training and inference.

    Attributes:
        train, test: Mulan-style ARFF files (labels are the last ``labels`` attributes).
        labels: number of labels ``L``; None reads it from the ``.xml`` beside ``train``
            (Mulan's ``<name>.xml`` for ``<name>-train.arff``).
        model: ``"ff"`` (feed-forward baseline) or ``"picnn"`` (energy convex in ``y``).
        training: PICNN only: ``"argmin"`` (a loss on ``y_hat = argmin_y f``, Section 5.2) or
            ``"max-margin"`` (structured hinge with loss-augmented inference, Section 5.1).
        out: output folder (``metrics.json``, ``model.safetensors``, ``history.json``).
        epochs, batch_size, lr, weight_decay: Adam training settings.
        patience: stop after this many epochs without a better validation score (0: never).
        hidden: width of the baseline's hidden layer and of the PICNN's x-path (paper: 600).
        y_hidden: width of the PICNN's y-path hidden layer.
        dropout: dropout on the baseline's hidden layer / on the PICNN's input features.
        strong_convexity: PICNN ``mu`` (adds ``mu/2 ||y||^2``).
        solver: :func:`icnn.argmin` method for inference over ``[0, 1]^L`` (and for the inner
            problem of training); None: ``bundle_entropy``, or ``pgd`` when training unrolls.
        solver_iters: iterations of the solver (training and inference).
        differentiable: argmin training: ``"implicit"`` (through the last bundle-entropy
            subproblem, Proposition 3) or ``"unroll"`` (through ``solver_iters`` PGD steps).
        loss: argmin training loss on ``y_hat``: ``"bce"`` or ``"mse"``.
        margin: max-margin scale of the Hamming margin ``Delta``.
        val_fraction: share of the training file held out to pick the epoch and threshold.
        threshold_metric: validation metric that picks the global decision threshold.
        max_train: use only the first ``max_train`` training examples (None: all).
        seed: seeds the split, the initialisation and the mini-batch order.
        threads: torch CPU threads (0: leave torch's default).
        progress: show progress bars.
    """

    train: str = ""
    test: str = ""
    labels: int | None = None
    model: str = "picnn"
    training: str = "argmin"
    out: str = "runs/multilabel"
    epochs: int = 30
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    patience: int = 8
    hidden: int = 600
    y_hidden: int = 200
    dropout: float = 0.0
    strong_convexity: float = 0.0
    solver: str | None = None
    solver_iters: int = 10
    differentiable: str = "implicit"
    loss: str = "bce"
    margin: float = 1.0
    val_fraction: float = 0.15
    threshold_metric: str = "example_f1"
    max_train: int | None = None
    seed: int = 0
    threads: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        choices = {"model": MODELS, "training": TRAININGS, "differentiable": DIFFERENTIABLE,
                   "loss": LOSSES, "threshold_metric": METRICS}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"expected {name} in {allowed}, got {getattr(self, name)!r}")
        if self.solver is not None and self.solver not in SOLVERS:
            raise ValueError(f"expected solver in {SOLVERS} or None, got {self.solver!r}")
        positive = ("epochs", "batch_size", "hidden", "y_hidden", "solver_iters")
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"expected {name} to be a positive int, got {value!r}")
        if self.labels is not None and self.labels <= 0:
            raise ValueError(f"expected labels to be a positive int or None, got {self.labels}")
        if self.max_train is not None and self.max_train < 2:
            raise ValueError(f"expected max_train >= 2 or None, got {self.max_train}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"expected val_fraction in (0, 1), got {self.val_fraction}")
        if not self.lr > 0.0:
            raise ValueError(f"expected lr > 0, got {self.lr}")
        if self.weight_decay < 0 or self.strong_convexity < 0 or self.margin < 0:
            raise ValueError("expected weight_decay, strong_convexity and margin >= 0, got "
                             f"{self.weight_decay}, {self.strong_convexity}, {self.margin}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"expected dropout in [0, 1), got {self.dropout}")
        if self.patience < 0 or self.threads < 0:
            raise ValueError(f"expected patience and threads >= 0, got {self.patience}, "
                             f"{self.threads}")

    @property
    def inference_solver(self) -> str:
        """The argmin method used at prediction time."""
        if self.solver is not None:
            return self.solver
        unrolled = self.training == "argmin" and self.differentiable == "unroll"
        return "pgd" if unrolled else "bundle_entropy"
