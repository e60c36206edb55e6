"""Every setting of one ``icnn multilabel`` run, one field per command-line flag."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .baselines import BASELINES
from .entropy_weight import check_entropy_weight
from .metrics import METRICS
from .models import MODELS

TRAININGS = ("argmin", "max-margin")
FF_DROPOUT = (0.0, 0.5)
SOLVERS = ("bundle_entropy", "pgd", "lbfgs", "bundle")
DIFFERENTIABLE = ("implicit", "unroll")
LOSSES = ("bce", "mse", "f1")


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
        epochs, batch_size, lr, weight_decay: Adam training settings; ``batch_size`` is lowered
            to ``ceil(n_train / 8)`` on a small training set (about 8 mini-batches an epoch) and
            nudged so that no batch holds one example
            (:func:`~icnn.tasks.multilabel.training.effective_batch_size`).
        patience: stop after this many epochs without a better validation score (0: never).
        hidden: width of the baseline's hidden layer and of the PICNN's x-path (paper: 600).
        y_hidden: width of the PICNN's y-path hidden layer.
        dropout: PICNN only: dropout on its input features (with ``freeze_x_path``: on the
            precomputed x-path output, the baseline's hidden layer). The feed-forward net's
            dropout is ``ff_dropout``.
        ff_dropout: the feed-forward net's dropout on its hidden layer (the ``--model ff`` run
            and the warm start's baseline), chosen on the validation split among these values
            (the first wins ties). The default grid ``(0, 0.5)``: over BibTeX, yeast, scene and
            emotions (3 seeds each), 0.5 scored higher on validation in 8 of 12 runs, and the
            selection raised the net's mean test example F1 by 0.001 (scene) to 0.010
            (emotions) (issue 18); the paper's net had none.
        strong_convexity: PICNN ``mu`` (adds ``mu/2 ||y||^2``).
        solver: :func:`icnn.argmin` method for inference over ``[0, 1]^L`` (and for the inner
            problem of training); None: ``bundle_entropy``, or ``pgd`` when training unrolls.
        solver_iters: iterations of the solver (training and inference).
        differentiable: argmin training: ``"implicit"`` (through the last bundle-entropy
            subproblem, Proposition 3) or ``"unroll"`` (through ``solver_iters`` PGD steps).
        loss: argmin training loss on ``y_hat``: ``"bce"``, ``"mse"`` or ``"f1"`` (one minus the
            soft example F1, the BibTeX metric on the relaxed labels).
        margin: max-margin scale of the Hamming margin ``Delta``.
        val_fraction: share of the training file held out to pick the epoch and threshold.
        threshold_metric: validation metric that picks the global decision threshold.
        init_from_ff: PICNN only: start from a trained baseline (Proposition 2): x-path = its
            hidden layer, energy ``-phi(x)^T y`` + a small convex y-path, so the bundle-entropy
            prediction starts at ``sigmoid(phi(x))``; the starting point is scored as epoch 0.
        ff_checkpoint: baseline checkpoint (``model.safetensors`` of an ``--model ff`` run with
            the same data, seed and hidden width) to start from; None trains one first.
        ff_epochs, ff_patience, ff_lr: training of that baseline when there is no checkpoint.
        z_scale: initial scale of the warm-started PICNN's convex y-path hidden layer.
        freeze_x_path: PICNN with ``init_from_ff``: keep the baseline's x-path fixed and compute
            it once per run (fine-tune only the energy head; much cheaper per step).
        z_lr: warm start: Adam learning rate of the convex y-path hidden layer (the part the
            baseline lacks); None: ``lr`` like the rest.
        entropy_weight: PICNN: weight ``w`` of the entropy in bundle-entropy inference and
            training (``argmin f - w H``, :mod:`.entropy_weight`); the warm start keeps epoch 0
            equal to the baseline, and the saved PICNN has ``1 / w`` folded in.
        max_train: use a random subset of ``max_train`` training examples, seeded by ``seed``
            (None: all): the small-data protocol.
        baselines: baselines measured in the same run, each tuned on the validation split
            (:mod:`.baselines`: ``logreg``, ``chain``, ``knn``); empty: none. The run's model is
            compared with them (and a warm-started PICNN with its feed-forward start) on
            validation, and ``metrics.json`` says which was best.
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
    ff_dropout: tuple[float, ...] = FF_DROPOUT
    strong_convexity: float = 0.0
    solver: str | None = None
    solver_iters: int = 10
    differentiable: str = "implicit"
    loss: str = "bce"
    margin: float = 1.0
    val_fraction: float = 0.15
    threshold_metric: str = "example_f1"
    init_from_ff: bool = True
    ff_checkpoint: str | None = None
    ff_epochs: int = 30
    ff_patience: int = 8
    ff_lr: float = 1e-3
    z_scale: float = 0.01
    freeze_x_path: bool = False
    z_lr: float | None = None
    entropy_weight: float = 1.0
    max_train: int | None = None
    baselines: tuple[str, ...] = BASELINES
    seed: int = 0
    threads: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        choices = {"model": MODELS, "training": TRAININGS, "differentiable": DIFFERENTIABLE,
                   "loss": LOSSES, "threshold_metric": METRICS}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"expected {name} in {allowed}, got {getattr(self, name)!r}")
        self.baselines = tuple(self.baselines)
        unknown = [name for name in self.baselines if name not in BASELINES]
        if unknown or len(set(self.baselines)) != len(self.baselines):
            raise ValueError(f"expected distinct baselines from {BASELINES}, got "
                             f"{list(self.baselines)}")
        check_entropy_weight(self.entropy_weight)
        if self.entropy_weight != 1.0 and self.strong_convexity != 0.0:
            raise ValueError(f"expected strong_convexity 0 with an entropy_weight other than 1, "
                             f"got {self.strong_convexity} with {self.entropy_weight}")
        if self.solver is not None and self.solver not in SOLVERS:
            raise ValueError(f"expected solver in {SOLVERS} or None, got {self.solver!r}")
        positive = ("epochs", "batch_size", "hidden", "y_hidden", "solver_iters", "ff_epochs")
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
        if not (self.lr > 0.0 and self.ff_lr > 0.0):
            raise ValueError(f"expected lr and ff_lr > 0, got {self.lr}, {self.ff_lr}")
        if self.z_lr is not None and not self.z_lr > 0.0:
            raise ValueError(f"expected z_lr > 0 or None, got {self.z_lr}")
        if self.z_scale < 0 or self.ff_patience < 0:
            raise ValueError(f"expected z_scale and ff_patience >= 0, got {self.z_scale}, "
                             f"{self.ff_patience}")
        if self.weight_decay < 0 or self.strong_convexity < 0 or self.margin < 0:
            raise ValueError("expected weight_decay, strong_convexity and margin >= 0, got "
                             f"{self.weight_decay}, {self.strong_convexity}, {self.margin}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"expected dropout in [0, 1), got {self.dropout}")
        if self.model == "ff" and self.dropout != 0.0:
            raise ValueError(f"expected --ff-dropout for the feed-forward net's dropout (--dropout "
                             f"is the picnn's input dropout), got dropout {self.dropout} with "
                             "model 'ff'")
        if isinstance(self.ff_dropout, str) or not isinstance(self.ff_dropout, Sequence):
            raise ValueError(f"expected ff_dropout to be a sequence of values in [0, 1), e.g. "
                             f"(0.0, 0.5), got {self.ff_dropout!r}")
        self.ff_dropout = tuple(self.ff_dropout)
        if (not self.ff_dropout or len(set(self.ff_dropout)) != len(self.ff_dropout)
                or not all(isinstance(p, int | float) and not isinstance(p, bool)
                           and 0.0 <= p < 1.0 for p in self.ff_dropout)):
            raise ValueError(f"expected ff_dropout to be distinct values in [0, 1), got "
                             f"{list(self.ff_dropout)}")
        if self.patience < 0 or self.threads < 0:
            raise ValueError(f"expected patience and threads >= 0, got {self.patience}, "
                             f"{self.threads}")

    @property
    def warm_start(self) -> bool:
        """True when this run starts a PICNN from a baseline (``init_from_ff``)."""
        return self.model == "picnn" and self.init_from_ff

    @property
    def inference_solver(self) -> str:
        """The argmin method used at prediction time."""
        if self.solver is not None:
            return self.solver
        unrolled = self.training == "argmin" and self.differentiable == "unroll"
        return "pgd" if unrolled else "bundle_entropy"
