"""Direct predictors of the missing pixels from the observed ones.

The baselines of ``icnn completion`` and the anchors ``g(x)`` of
:class:`icnn.tasks.completion.anchor.AnchoredEnergy`.

Every predictor is a frozen torch module ``g: x (n, *x_shape) -> y (n, *y_shape)`` with values in
``[0, 1]`` (the inference box), so a baseline can be scored, saved, and used as an anchor the same
way:

* ``mean_image``: the mean training target (of the training images, without their mirrors: the
  README's trivial baseline);
* ``ridge``: ridge regression from the flattened ``x`` to the flattened ``y`` (scikit-learn),
  ``alpha`` chosen on the validation split;
* ``kernel_ridge``: RBF kernel ridge regression on the centred targets (scikit-learn), ``alpha``
  and ``gamma = factor / median squared distance`` chosen on the validation split;
* ``blend``: the mean of the ridge and kernel-ridge predictions (each with its own chosen
  hyper-parameters), fit whenever both are;
* ``cnn``: the completion network's conv stack (same geometry) with a dense head and a sigmoid
  output, trained as a direct regressor with the MSE (Adam, the epoch with the best validation
  MSE kept): the feed-forward counterpart of the energy model.

The ``fit_*`` functions here fit on the training split (and its mirrors when ``flip``) and choose
on a validation split; ``icnn completion`` chooses the closed forms by cross-validation over every
training image instead (:mod:`icnn.tasks.completion.crossval`, same candidates and fits).
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from ...learn.trainer import Trainer, TrainerConfig, seed_everything
from ...nn.conv import conv_stages
from .data import CompletionSplit, concatenate, mirrored, paper_mse, per_example_mse, subset
from .folds import group_folds

BASELINES = ("ridge", "kernel_ridge", "cnn")
# the baselines with a closed-form fit (refit on any set of images; the anchors)
CLOSED_FORMS = ("mean_image", "ridge", "kernel_ridge", "blend")
RIDGE_ALPHAS = tuple(10.0 ** k for k in range(-2, 5))
KERNEL_ALPHAS = (1e-3, 1e-2, 1e-1, 1.0, 10.0)
KERNEL_GAMMA_FACTORS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)


class Anchor(nn.Module):
    """A direct predictor ``g(x)`` with values in ``[0, 1]``; frozen (buffers, or no gradient).

    Shape:
        Input ``x: (n, *x_shape)`` -> Output ``(n, *y_shape)``.
    """

    def __init__(self, y_shape: Sequence[int]) -> None:
        super().__init__()
        self.y_shape = tuple(int(s) for s in y_shape)

    def predict(self, x: Tensor) -> Tensor:
        """Flat predictions ``(batch, prod(y_shape))`` for observed parts ``x``."""
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        """Predictions clamped to ``[0, 1]``, ``(batch, *y_shape)``, without gradients."""
        with torch.no_grad():
            return self.predict(x).clamp(0.0, 1.0).reshape(x.shape[0], *self.y_shape)


class MeanAnchor(Anchor):
    """``g(x) = mean``: the mean training target ``(1, *y_shape)``."""

    def __init__(self, mean: Tensor) -> None:
        super().__init__(mean.shape[1:])
        self.register_buffer("mean", mean.detach().clone())

    def predict(self, x: Tensor) -> Tensor:
        """The mean training image's missing part, for every example."""
        return self.mean.expand(x.shape[0], *self.y_shape)


class LinearAnchor(Anchor):
    """``g(x) = clamp(vec(x) W + b)``: ridge regression. ``weight: (d_x, d_y)``, ``bias: (d_y,)``."""

    def __init__(self, weight: Tensor, bias: Tensor, y_shape: Sequence[int]) -> None:
        super().__init__(y_shape)
        self.register_buffer("weight", weight.detach().clone())
        self.register_buffer("bias", bias.detach().clone())

    def predict(self, x: Tensor) -> Tensor:
        """The ridge regression's prediction, flat."""
        return x.flatten(1).to(self.weight.dtype) @ self.weight + self.bias


class KernelAnchor(Anchor):
    """``g(x) = clamp(k(x, X) A + m)``, ``k(a, b) = exp(-gamma ||a - b||^2)``: kernel ridge.

    Buffers: ``centers: (m, d_x)`` the training inputs, ``dual: (m, d_y)``, ``offset: (d_y,)``.
    """

    def __init__(self, centers: Tensor, dual: Tensor, offset: Tensor, gamma: float,
                 y_shape: Sequence[int]) -> None:
        super().__init__(y_shape)
        self.register_buffer("centers", centers.detach().clone())
        self.register_buffer("dual", dual.detach().clone())
        self.register_buffer("offset", offset.detach().clone())
        self.gamma = float(gamma)

    def predict(self, x: Tensor) -> Tensor:
        """The RBF kernel ridge regression's prediction, flat."""
        distances = torch.cdist(x.flatten(1).to(self.centers.dtype), self.centers).square()
        return torch.exp(-self.gamma * distances) @ self.dual + self.offset


class BlendAnchor(Anchor):
    """``g(x) = mean_k g_k(x)``: the average of several fitted predictors."""

    def __init__(self, anchors: Sequence[Anchor]) -> None:
        super().__init__(anchors[0].y_shape)
        self.members = nn.ModuleList(anchors)

    def predict(self, x: Tensor) -> Tensor:
        """The mean of the members' predictions, flat."""
        parts = [m(x).flatten(1) for m in self.members]
        return sum(parts) / len(parts)


class ConvRegressor(Anchor):
    """The completion network's x-path as a direct regressor.

    Conv stages ("same" padding, ReLU), dense ReLU layers, a linear output and a sigmoid, started at the mean
    target.

    Args:
        x_shape, y_shape: ``(C, H, W)`` of the input and the output (same ``H, W``).
        channels, kernel_sizes, strides, dense: the conv PICNN's geometry.
        mean: ``(1, *y_shape)`` the output at initialisation is close to (the sigmoid's bias is
            its logit).
    """

    def __init__(self, x_shape: Sequence[int], y_shape: Sequence[int], channels: Sequence[int],
                 kernel_sizes: Sequence[int], strides: Sequence[int], dense: Sequence[int],
                 mean: Tensor) -> None:
        super().__init__(y_shape)
        # what :func:`load_anchor` needs to rebuild it
        self.geometry = {"x_shape": [int(s) for s in x_shape], "y_shape": list(self.y_shape),
                         "channels": [int(c) for c in channels],
                         "kernel_sizes": [int(k) for k in kernel_sizes],
                         "strides": [int(s) for s in strides], "dense": [int(d) for d in dense]}
        self.stages = conv_stages(tuple(x_shape[1:]), kernel_sizes, strides)
        widths = (int(x_shape[0]), *channels)
        self.convs = nn.ModuleList(
            nn.Conv2d(c_in, c_out, **stage.conv_kwargs())
            for c_in, c_out, stage in zip(widths[:-1], widths[1:], self.stages, strict=True))
        height, width = self.stages[-1].out_size
        sizes = (channels[-1] * height * width, *dense)
        self.dense = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:],
                                                                      strict=True))
        self.out = nn.Linear(sizes[-1], math.prod(self.y_shape))
        with torch.no_grad():
            self.out.weight.mul_(0.1)
            self.out.bias.copy_(torch.logit(mean.flatten().clamp(1e-3, 1 - 1e-3)))

    def logits(self, x: Tensor) -> Tensor:
        """``(n, d_y)`` pre-sigmoid outputs, with a graph (training)."""
        h = x
        for conv, stage in zip(self.convs, self.stages, strict=True):
            h = torch.relu(conv(stage.pad(h)))
        h = h.flatten(1)
        for layer in self.dense:
            h = torch.relu(layer(h))
        return self.out(h)

    def predict(self, x: Tensor) -> Tensor:
        """The conv net's prediction in ``(0, 1)``."""
        return torch.sigmoid(self.logits(x))


@dataclass
class BaselineResult:
    """One fitted baseline.

    Attributes:
        name: ``"mean_image"``, ``"ridge"``, ``"kernel_ridge"`` or ``"cnn"``.
        anchor: the fitted predictor (frozen).
        params: the hyper-parameters chosen on the validation split, or by cross-validation.
        val_mse, test_mse, train_mse: MSE in the paper's 0-255 units (train: the training
            images, without mirrors); ``val_mse`` None without a validation split.
        grid: every candidate tried, with its validation (or cross-validation) MSE.
        cv_mse: the out-of-fold MSE over every training image when the hyper-parameters were
            chosen by cross-validation (:mod:`icnn.tasks.completion.crossval`), else None.
        val_anchor: the predictor whose validation predictions gave ``val_mse`` (fit on the
            training part only; the CNN: ``anchor`` itself), None without a validation split.
    """

    name: str
    anchor: Anchor
    params: dict[str, Any]
    val_mse: float | None
    test_mse: float
    train_mse: float
    grid: list[dict[str, Any]] = field(default_factory=list)
    cv_mse: float | None = None
    val_anchor: Anchor | None = None

    @property
    def selection_mse(self) -> float:
        """What selection ranks by: the cross-validation MSE, else the validation MSE.

        Raises:
            ValueError: neither is known.
        """
        if self.cv_mse is not None:
            return self.cv_mse
        if self.val_mse is None:
            raise ValueError(f"expected a cross-validation or validation MSE for baseline "
                             f"{self.name!r}, got neither")
        return self.val_mse

    def record(self) -> dict[str, Any]:
        """The JSON record of ``metrics.json``."""
        return {"test_mse": self.test_mse, "val_mse": self.val_mse, "train_mse": self.train_mse,
                "cv_mse": self.cv_mse, "params": self.params, "grid": self.grid}


def _sklearn() -> Any:
    try:
        import sklearn.kernel_ridge
        import sklearn.linear_model
    except ImportError as error:
        raise ValueError("expected scikit-learn for the ridge and kernel-ridge baselines "
                         "(pip install 'icnn-torch[data]'), got ImportError: "
                         f"{error}") from error
    return sklearn


def ridge_anchor(fit_on: CompletionSplit, alpha: float) -> LinearAnchor:
    """Ridge regression ``vec(x) -> vec(y)`` fit on every example of ``fit_on`` (float64)."""
    sklearn = _sklearn()
    inputs = fit_on.x.flatten(1).double().numpy()
    targets = fit_on.y.flatten(1).double().numpy()
    model = sklearn.linear_model.Ridge(alpha=float(alpha)).fit(inputs, targets)
    dtype = fit_on.y.dtype
    return LinearAnchor(torch.from_numpy(model.coef_.T.copy()).to(dtype),
                        torch.from_numpy(model.intercept_.copy()).to(dtype), fit_on.y.shape[1:])


def kernel_anchor(fit_on: CompletionSplit, alpha: float, gamma: float) -> KernelAnchor:
    """RBF kernel ridge on the centred targets fit on every example of ``fit_on`` (float64)."""
    sklearn = _sklearn()
    inputs = fit_on.x.flatten(1).double()
    offset = fit_on.y.flatten(1).double().mean(0)
    targets = (fit_on.y.flatten(1).double() - offset).numpy()
    model = sklearn.kernel_ridge.KernelRidge(alpha=float(alpha), kernel="rbf",
                                             gamma=float(gamma)).fit(inputs.numpy(), targets)
    dtype = fit_on.y.dtype
    return KernelAnchor(inputs.to(dtype), torch.from_numpy(model.dual_coef_).to(dtype),
                        offset.to(dtype), gamma, fit_on.y.shape[1:])


def refit(result: BaselineResult, fit_on: CompletionSplit) -> Anchor:
    """A closed-form baseline with its chosen hyper-parameters, fit again on ``fit_on``.

    The baseline ``result`` (mean image, ridge or kernel ridge) with its chosen
    hyper-parameters, fit again on ``fit_on``.

    Raises:
        ValueError: ``result`` is the CNN (not refit: it is trained, not solved).
    """
    if result.name == "mean_image":
        return MeanAnchor(fit_on.y.mean(0, keepdim=True))
    if result.name == "ridge":
        return ridge_anchor(fit_on, result.params["alpha"])
    if result.name == "kernel_ridge":
        return kernel_anchor(fit_on, result.params["alpha"], result.params["gamma"])
    if result.name == "blend":
        return BlendAnchor([ridge_anchor(fit_on, result.params["ridge"]["alpha"]),
                            kernel_anchor(fit_on, result.params["kernel_ridge"]["alpha"],
                                          result.params["kernel_ridge"]["gamma"])])
    raise ValueError(f"expected a closed-form baseline (mean_image, ridge, kernel_ridge, blend) to "
                     f"refit, got {result.name!r}")


def fit_on(result: BaselineResult, train: CompletionSplit, *, flip: bool = True) -> Anchor:
    """A closed-form baseline with its chosen hyper-parameters, fit on ``train`` (and mirrors).

    Raises:
        ValueError: ``result`` is the CNN.
    """
    return refit(result, _training_set(train, flip))


def out_of_fold(fit: Any, train: CompletionSplit, blocks: Sequence[Tensor], *,
                flip: bool = True, mirrors: bool = False) -> Tensor:
    """Predictions for every training image from a predictor fit without its block.

    Args:
        fit: ``CompletionSplit -> Anchor``, fits a predictor on the examples given.
        train: the training images.
        blocks: index tensors partitioning ``0..len(train)-1``
            (:func:`icnn.tasks.completion.folds.group_folds`).
        flip: fit on the other blocks' images and their mirrors.
        mirrors: also predict the mirrors of the training images.

    Returns:
        ``(n, *y_shape)``, or ``(2n, *y_shape)`` with ``mirrors`` (the images, then their
        mirrors), observed pixels pinned.

    Raises:
        ValueError: ``blocks`` that do not partition the training images.
    """
    n = len(train)
    covered = torch.cat(list(blocks)).sort().values if blocks else torch.empty(0, dtype=torch.long)
    if len(blocks) < 2 or not torch.equal(covered, torch.arange(n)):
        raise ValueError(f"expected at least two blocks partitioning the {n} training images, got "
                         f"{len(blocks)} blocks covering {len(covered)} indices")
    own = torch.empty_like(train.y)
    mirror = torch.empty_like(train.y)
    flipped = mirrored(train) if mirrors else None
    for block in blocks:
        rest = torch.ones(n, dtype=torch.bool)
        rest[block] = False
        anchor = fit(_training_set(subset(train, rest.nonzero()[:, 0]), flip))
        own[block] = predict_anchor(anchor, subset(train, block))
        if flipped is not None:
            mirror[block] = predict_anchor(anchor, subset(flipped, block))
    return torch.cat([own, mirror]) if mirrors else own


def cross_fitted(result: BaselineResult, train: CompletionSplit, *, flip: bool = True,
                 folds: int = 5, group_size: int = 1) -> Tensor:
    """Out-of-fold predictions of a closed-form baseline on its own training examples.

    The training images are cut into ``folds`` contiguous blocks of whole groups of
    ``group_size`` images (:func:`icnn.tasks.completion.folds.group_folds`; Olivetti: whole
    people); the prediction for an image (and its mirror, when ``flip``) comes from the
    baseline refit on the other blocks (and their mirrors). An energy anchored to ``g`` is
    trained on these, so its training residuals look like the ones on new faces, not the
    in-sample ones (kernel ridge fits its training faces almost exactly).

    Returns:
        ``(n, *y_shape)`` aligned with the training set (``n = len(train)``, or ``2 len(train)``
        with ``flip``: the images, then their mirrors).

    Raises:
        ValueError: ``folds`` outside ``[2, number of groups]``, or a CNN ``result``.
    """
    blocks = group_folds(len(train), folds, group_size)
    return out_of_fold(lambda split: refit(result, split), train, blocks, flip=flip, mirrors=flip)


def save_anchor(anchor: Anchor, name: str, params: dict[str, Any], path: Any) -> None:
    """Write a baseline's tensors with its name and hyper-parameters (safetensors, atomic).

    Closed forms (mean image, ridge, kernel ridge, blend) and the CNN regressor (with its
    geometry); :func:`load_anchor` rebuilds it: the same predictions, bit for bit.

    Raises:
        ValueError: ``name`` is ``"cnn"`` but ``anchor`` is not a :class:`ConvRegressor`.
    """
    from ...checkpoint import write_tensors

    metadata = {"anchor": name, "params": json.dumps(params),
                "y_shape": json.dumps(list(anchor.y_shape))}
    if name == "cnn":
        if not isinstance(anchor, ConvRegressor):
            raise ValueError(f"expected a ConvRegressor for the cnn baseline, got "
                             f"{type(anchor).__name__}")
        metadata["geometry"] = json.dumps(anchor.geometry)
    write_tensors(path, {k: v.detach().contiguous() for k, v in anchor.state_dict().items()},
                  metadata)


def load_anchor(path: Any) -> Anchor:
    """The baseline written by :func:`save_anchor` (mean image, ridge, kernel ridge, blend, cnn).

    Raises:
        ValueError: a file without an anchor name, or a name that is not a baseline.
    """
    from ...checkpoint import read_safetensors_header, read_tensors

    _, header = read_safetensors_header(path)
    name, tensors = header.get("anchor"), read_tensors(path)
    params, y_shape = json.loads(header.get("params", "{}")), json.loads(header.get("y_shape", "[]"))
    if name == "cnn" and "geometry" in header:
        geometry = json.loads(header["geometry"])
        model = ConvRegressor(geometry["x_shape"], geometry["y_shape"], geometry["channels"],
                              geometry["kernel_sizes"], geometry["strides"], geometry["dense"],
                              torch.full((1, *geometry["y_shape"]), 0.5))
        return _frozen(model.to(tensors["out.weight"].dtype), tensors)
    if name == "mean_image":
        return MeanAnchor(tensors["mean"])
    if name == "ridge":
        return LinearAnchor(tensors["weight"], tensors["bias"], y_shape)
    if name == "kernel_ridge":
        return KernelAnchor(tensors["centers"], tensors["dual"], tensors["offset"],
                            params["gamma"], y_shape)
    if name == "blend":
        gamma = params["kernel_ridge"]["gamma"]
        return BlendAnchor([
            LinearAnchor(tensors["members.0.weight"], tensors["members.0.bias"], y_shape),
            KernelAnchor(tensors["members.1.centers"], tensors["members.1.dual"],
                         tensors["members.1.offset"], gamma, y_shape)])
    raise ValueError(f"expected an anchor file of mean_image, ridge, kernel_ridge, blend or cnn, got "
                     f"{path} with anchor {name!r}")


def _score(anchor: Anchor, split: CompletionSplit) -> float:
    return paper_mse(predict_anchor(anchor, split), split)


@torch.no_grad()
def predict_anchor(anchor: Anchor, split: CompletionSplit, batch_size: int = 100) -> Tensor:
    """``(n, *y_shape)`` predictions of ``anchor`` on ``split``, observed pixels pinned."""
    parts = [anchor(split.x[i:i + batch_size]) for i in range(0, len(split), batch_size)]
    prediction = torch.cat(parts).to(split.y.dtype)
    if split.observed is not None:
        prediction = torch.where(split.observed, split.y, prediction)
    return prediction


def _training_set(train: CompletionSplit, flip: bool) -> CompletionSplit:
    return concatenate(train, mirrored(train)) if flip else train


def _select(candidates: list[tuple[dict[str, Any], Anchor]], name: str, train: CompletionSplit,
            validation: CompletionSplit, test: CompletionSplit) -> BaselineResult:
    grid = [{**params, "val_mse": _score(anchor, validation)} for params, anchor in candidates]
    best = min(range(len(grid)), key=lambda i: grid[i]["val_mse"])
    params, anchor = candidates[best]
    return BaselineResult(name, anchor, params, grid[best]["val_mse"], _score(anchor, test),
                          _score(anchor, train), grid)


def fit_mean_image(train: CompletionSplit, validation: CompletionSplit, test: CompletionSplit,
                   ) -> BaselineResult:
    """The mean training target (of the training images, without mirrors)."""
    anchor = MeanAnchor(train.y.mean(0, keepdim=True))
    return _select([({}, anchor)], "mean_image", train, validation, test)


def fit_ridge(train: CompletionSplit, validation: CompletionSplit, test: CompletionSplit, *,
              flip: bool = True, alphas: Sequence[float] = RIDGE_ALPHAS) -> BaselineResult:
    """Ridge regression ``vec(x) -> vec(y)`` for every ``alpha``, the best on ``validation``.

    Raises:
        ValueError: scikit-learn missing, or an empty ``alphas``.
    """
    if not alphas:
        raise ValueError("expected at least one ridge alpha, got none")
    candidates = [({"alpha": float(alpha)}, ridge_anchor(_training_set(train, flip), alpha))
                  for alpha in alphas]
    return _select(candidates, "ridge", train, validation, test)


def fit_kernel_ridge(train: CompletionSplit, validation: CompletionSplit, test: CompletionSplit,
                     *, flip: bool = True, alphas: Sequence[float] = KERNEL_ALPHAS,
                     gamma_factors: Sequence[float] = KERNEL_GAMMA_FACTORS) -> BaselineResult:
    """RBF kernel ridge on the centred targets, ``gamma = factor / median ||x_i - x_j||^2``.

    Raises:
        ValueError: scikit-learn missing, or an empty grid.
    """
    if not alphas or not gamma_factors:
        raise ValueError("expected non-empty alpha and gamma grids for kernel ridge")
    fit_on = _training_set(train, flip)
    inputs = fit_on.x.flatten(1).double()
    distances = torch.cdist(inputs, inputs).square()
    median = float(distances[distances > 0].median()) if bool((distances > 0).any()) else 1.0
    candidates = []
    for factor in gamma_factors:
        for alpha in alphas:
            params = {"alpha": float(alpha), "gamma_factor": float(factor),
                      "gamma": float(factor) / median}
            candidates.append((params, kernel_anchor(fit_on, alpha, params["gamma"])))
    return _select(candidates, "kernel_ridge", train, validation, test)


@dataclass
class RegressorConfig:
    """The direct CNN regressor's training (the energy model's geometry and Adam settings).

    Attributes:
        channels, kernel_sizes, strides, dense: the conv geometry.
        epochs, batch_size, lr, weight_decay, seed: Adam with a cosine schedule.
        flip: train on the images and their mirrors.
    """

    channels: tuple[int, ...] = (32, 64, 64)
    kernel_sizes: tuple[int, ...] = (8, 4, 3)
    strides: tuple[int, ...] = (4, 2, 1)
    dense: tuple[int, ...] = (512,)
    epochs: int = 30
    batch_size: int = 70
    lr: float = 1e-3
    weight_decay: float = 0.0
    seed: int = 0
    flip: bool = True


def _train_regressor(train: CompletionSplit, config: RegressorConfig,
                     on_epoch: Callable[[ConvRegressor, int], None]) -> ConvRegressor:
    """Train :class:`ConvRegressor` with the MSE for ``config.epochs`` epochs.

    ``on_epoch(model, epoch)`` runs after every epoch (epochs count from 1). Returns the model
    after the last epoch.
    """
    seed_everything(config.seed)
    fit_on = _training_set(train, config.flip)
    model = ConvRegressor(train.x.shape[1:], train.y.shape[1:], config.channels,
                          config.kernel_sizes, config.strides, config.dense,
                          fit_on.y.mean(0, keepdim=True))

    def loss_fn(model: ConvRegressor, batch: tuple[Tensor, ...]) -> Tensor:
        (index,) = batch
        examples = subset(fit_on, index)
        error = (torch.sigmoid(model.logits(examples.x)) - examples.y.flatten(1)).square()
        predicted = examples.predicted.flatten(1)
        return (error * predicted).sum(1) / predicted.sum(1)

    epochs = [0]

    def eval_fn(model: ConvRegressor) -> dict[str, float]:
        epochs[0] += 1
        on_epoch(model, epochs[0])
        return {}

    trainer = Trainer(model, loss_fn, TrainerConfig(
        epochs=config.epochs, batch_size=config.batch_size, lr=config.lr, seed=config.seed,
        schedule="cosine", weight_decay=config.weight_decay, progress=False,
        checkpoint_every=max(config.epochs, 1)), eval_fn=eval_fn)
    trainer.fit((torch.arange(len(fit_on)),))
    return model


def _frozen(model: ConvRegressor, state: dict[str, Tensor]) -> ConvRegressor:
    model.load_state_dict(state)
    model.requires_grad_(False)
    model.eval()
    return model


def fit_conv_regressor(train: CompletionSplit, validation: CompletionSplit,
                       test: CompletionSplit, config: RegressorConfig) -> BaselineResult:
    """Train :class:`ConvRegressor` with the MSE; keep the epoch with the best validation MSE."""
    best: dict[str, Any] = {"val_mse": math.inf, "state": None, "epoch": 0}
    grid: list[dict[str, Any]] = []

    def on_epoch(model: ConvRegressor, epoch: int) -> None:
        val_mse = _score(model, validation)
        grid.append({"epoch": epoch, "val_mse": val_mse})
        if val_mse < best["val_mse"]:
            best.update(val_mse=val_mse, state=copy.deepcopy(model.state_dict()), epoch=epoch)

    model = _frozen(_train_regressor(train, config, on_epoch), best["state"])
    return BaselineResult("cnn", model, {"epoch": best["epoch"], "epochs": config.epochs},
                          best["val_mse"], _score(model, test), _score(model, train), grid,
                          val_anchor=model)


def regressor_curve(train: CompletionSplit, held: CompletionSplit, config: RegressorConfig,
                    ) -> Tensor:
    """``(epochs, len(held))``: per-image MSE (0-255 units) on ``held`` after every epoch.

    The CNN regressor trained on ``train`` (one fold of the cross-fit,
    :mod:`icnn.tasks.completion.crossfit`); nothing is selected.
    """
    errors: list[Tensor] = []
    _train_regressor(train, config, lambda model, epoch: errors.append(
        per_example_mse(predict_anchor(model, held), held)))
    return torch.stack(errors)


def conv_regressor_at(train: CompletionSplit, test: CompletionSplit, config: RegressorConfig,
                      epoch: int, grid: list[dict[str, Any]] | None = None) -> BaselineResult:
    """The CNN regressor trained on ``train`` with its weights after ``epoch`` (chosen elsewhere).

    Raises:
        ValueError: ``epoch`` outside ``1..config.epochs``.
    """
    if isinstance(epoch, bool) or not isinstance(epoch, int) or not 1 <= epoch <= config.epochs:
        raise ValueError(f"expected an epoch in [1, {config.epochs}], got {epoch!r}")
    kept: dict[str, Any] = {}

    def on_epoch(model: ConvRegressor, at: int) -> None:
        if at == epoch:
            kept["state"] = copy.deepcopy(model.state_dict())

    model = _frozen(_train_regressor(train, config, on_epoch), kept["state"])
    return BaselineResult("cnn", model, {"epoch": epoch, "epochs": config.epochs}, None,
                          _score(model, test), _score(model, train), grid or [])


def fit_baselines(train: CompletionSplit, validation: CompletionSplit, test: CompletionSplit,
                  names: Sequence[str], regressor: RegressorConfig,
                  ) -> dict[str, BaselineResult]:
    """The mean image and the baselines in ``names``, each selected on ``validation``.

    The mean image, every baseline in ``names``, each selected on ``validation``, and the
    blend of ridge and kernel ridge when both are fit.

    Raises:
        ValueError: an unknown name, scikit-learn missing for ridge / kernel ridge.
    """
    unknown = [name for name in names if name not in BASELINES]
    if unknown:
        raise ValueError(f"expected baselines among {BASELINES}, got {unknown}")
    results = {"mean_image": fit_mean_image(train, validation, test)}
    for name in dict.fromkeys(names):
        if name == "ridge":
            results[name] = fit_ridge(train, validation, test, flip=regressor.flip)
        elif name == "kernel_ridge":
            results[name] = fit_kernel_ridge(train, validation, test, flip=regressor.flip)
        else:
            results[name] = fit_conv_regressor(train, validation, test, regressor)
    if "ridge" in results and "kernel_ridge" in results:
        ridge, kernel = results["ridge"], results["kernel_ridge"]
        blend = BlendAnchor([ridge.anchor, kernel.anchor])
        results["blend"] = _select([({"ridge": ridge.params, "kernel_ridge": kernel.params},
                                     blend)], "blend", train, validation, test)
    return results


def best_baseline(results: dict[str, BaselineResult]) -> BaselineResult:
    """The baseline with the lowest selection MSE (cross-validation, else validation; ties: the first)."""
    return min(results.values(), key=lambda r: r.selection_mse)
