r"""Start a potential's gradient map at the identity or at the Gaussian (linear) OT map.

Between ``N(m_s, S_s)`` and ``N(m_t, S_t)`` the optimal map for the squared Euclidean cost is
``T(y) = m_t + A (y - m_s)`` with

.. math:: A = S_s^{-1/2} \big(S_s^{1/2} S_t S_s^{1/2}\big)^{1/2} S_s^{-1/2},

the gradient of ``f(y) = y^T A y / 2 + b^T y`` with ``b = m_t - A m_s``. An ICNN with quadratic
terms (``quadratic_rank > 0``) holds that potential in its output unit: the unit's PSD quadratic
``y^T (F F^T + diag(d)) y`` is set to ``(A - mu I) / 2`` (``mu``: the model's own strong
convexity), its linear passthrough to ``b``, and the rest of the network, which reaches the
output through the last non-negative layer, is scaled down by ``network_scale``. Training then
starts from the linear map the moments give (ott-jax's and Korotin et al.'s practice).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..nn.constraints import set_nonnegative_
from ..nn.ficnn import FICNN
from ..nn.picnn import PICNN
from .gradient_map import gradient_map


@dataclass
class GaussianMapInit:
    """What :func:`gaussian_map_init` set.

    Attributes:
        matrix: ``(D, D)`` the map's matrix ``A`` (symmetric positive definite).
        offset: ``(D,)`` the map's offset ``b`` (``T(y) = A y + b``).
        error: the largest relative error ``||grad f(y) - T(y)|| / max(1, ||T(y)||)`` of the
            initialised model over the ``source`` rows (over 256 standard normal points for the
            identity), measured after initialisation.
    """

    matrix: Tensor
    offset: Tensor
    error: float


def gaussian_map(source: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """``(A, b)`` of the OT map between the Gaussians with the samples' means and covariances.

    Args:
        source: ``(N, D)`` samples, ``N > D``.
        target: ``(M, D)`` samples, ``M > D``.

    Returns:
        ``A: (D, D)`` and ``b: (D,)`` in the samples' dtype, with ``T(y) = A y + b``.

    Raises:
        TypeError: samples that are not torch tensors (a numpy array: ``torch.as_tensor`` it).
        ValueError: not 2-D floating, dimensions that differ, too few rows, non-finite entries,
            or a singular sample covariance.
    """
    for name, samples in (("source", source), ("target", target)):
        _check_samples(name, samples)
        if samples.shape[0] <= samples.shape[1]:
            raise ValueError(f"expected more {name} samples than dimensions (a covariance of full "
                             f"rank), got {samples.shape[0]} samples of dimension "
                             f"{samples.shape[1]}")
        if not bool(torch.isfinite(samples).all()):
            raise ValueError(f"expected finite {name} samples, got NaN/inf entries")
    if source.shape[1] != target.shape[1]:
        raise ValueError(f"expected source and target of the same dimension, got "
                         f"{source.shape[1]} and {target.shape[1]}")
    s, t = source.double(), target.double()
    mean_s, mean_t = s.mean(0), t.mean(0)
    cov_s, cov_t = torch.cov(s.T).reshape(s.shape[1], -1), torch.cov(t.T).reshape(t.shape[1], -1)
    values, vectors = torch.linalg.eigh(cov_s)
    if not bool(values.min() > 1e-12 * values.max().clamp_min(1e-300)):
        raise ValueError("expected a source sample covariance of full rank, got a singular one "
                         "(the samples lie in a subspace)")
    root = (vectors * values.sqrt()) @ vectors.T
    inv_root = (vectors * values.rsqrt()) @ vectors.T
    middle_values, middle_vectors = torch.linalg.eigh(root @ cov_t @ root)
    middle = (middle_vectors * middle_values.clamp_min(0).sqrt()) @ middle_vectors.T
    matrix = inv_root @ middle @ inv_root
    matrix = 0.5 * (matrix + matrix.T)
    offset = mean_t - matrix @ mean_s
    return matrix.to(source.dtype), offset.to(source.dtype)


def _check_samples(name: str, samples: object) -> None:
    """Refuse ``samples`` that are not a floating ``(N, D)`` torch tensor.

    Raises:
        TypeError: not a torch tensor.
        ValueError: not 2-D, or not floating.
    """
    if not isinstance(samples, Tensor):
        raise TypeError(f"expected {name} a torch.Tensor of shape (N, D), got "
                        f"{type(samples).__module__}.{type(samples).__name__} (convert with "
                        f"torch.as_tensor)")
    if samples.dim() != 2 or not samples.is_floating_point():
        raise ValueError(f"expected {name} a floating tensor of shape (N, D) (one sample a row), "
                         f"got {samples.dtype} of shape {tuple(samples.shape)}")


@torch.no_grad()
def gaussian_map_init(model: nn.Module, source: Tensor | None = None,
                      target: Tensor | None = None, *, network_scale: float = 1e-3
                      ) -> GaussianMapInit:
    """Set ``model`` in place so that ``grad_y f`` starts as the Gaussian OT map.

    Set ``model`` (in place) so that ``grad_y f`` starts as the Gaussian OT map from
    ``source`` to ``target`` (both None: the identity map).

    Args:
        model: an :class:`icnn.FICNN` or :class:`icnn.PICNN` built with ``quadratic_rank >
            0``. The output unit represents ``(A - mu I) / 2`` exactly when ``quadratic_rank >=
            D - 1``; with a smaller rank it keeps the best rank-``R`` part and ``error`` says
            how far the map is.
        source: ``(N, D)`` samples of the source, or None.
        target: ``(M, D)`` samples of the target, or None (with ``source``).
        network_scale: factor on the last non-negative layer (``> 0``: the network keeps its
            shape and learns from there; its share of ``grad f`` shrinks by this factor).

    Returns:
        :class:`GaussianMapInit` with ``A``, ``b`` and the measured ``error``.

    Raises:
        TypeError: ``model`` is not an FICNN or PICNN; samples that are not torch tensors.
        ValueError: no quadratic terms, a ``network_scale`` outside ``(0, 1]``, only one of
            ``source``/``target``, samples :func:`gaussian_map` refuses or of another
            dimension than the model's ``y``, or a model whose strong convexity ``mu`` exceeds
            the map's smallest eigenvalue ``lambda_min(A)`` (its gradient ``A y + b`` needs
            ``f = y^T A y / 2 + ...`` with ``A - mu I`` PSD in the quadratic terms).
    """
    if not isinstance(model, FICNN | PICNN):
        raise TypeError(f"expected an icnn.FICNN or icnn.PICNN, got {type(model).__name__}")
    if model.quadratic is None:
        raise ValueError("expected a model with quadratic terms (build it with quadratic_rank > "
                         "0: the map's matrix lives in the output unit's PSD quadratic), got "
                         "quadratic_rank=0")
    if not 0 < network_scale <= 1:
        raise ValueError(f"expected network_scale in (0, 1], got {network_scale!r}")
    dim = model.convex_input_shape[0]
    dtype, device = model.dtype, model.device
    if (source is None) != (target is None):
        raise ValueError("expected both source and target samples (a Gaussian map) or neither "
                         "(the identity), got only one")
    if source is None:
        matrix = torch.eye(dim, dtype=dtype, device=device)
        offset = torch.zeros(dim, dtype=dtype, device=device)
        probe = torch.randn(256, dim, dtype=dtype, device=device)
    else:
        _check_samples("source", source)
        _check_samples("target", target)
        if source.shape[-1] != dim or target.shape[-1] != dim:
            raise ValueError(f"expected samples of dimension {dim} (the model's y), got "
                             f"{source.shape[-1]} and {target.shape[-1]}")
        matrix, offset = gaussian_map(source.to(device, dtype), target.to(device, dtype))
        probe = source.to(device, dtype)
    smallest = float(torch.linalg.eigvalsh(matrix.double()).min())
    mu = float(model.strong_convexity)
    if mu > smallest + 1e-9 * max(1.0, abs(smallest)):
        raise ValueError(f"expected the model's strong convexity mu <= lambda_min(A) = "
                         f"{smallest:.6g} (the map's smallest eigenvalue: grad f = A y + b needs "
                         f"A - mu I PSD), got mu = {mu:.6g}; build the model with a smaller "
                         f"strong_convexity")
    _set_output_quadratic(model, 0.5 * (matrix.double() - model.strong_convexity
                                        * torch.eye(dim, dtype=torch.float64, device=device)))
    _set_output_linear(model, offset)
    last = model.z_layers[-1] if len(model.z_layers) else None
    if last is not None:
        set_nonnegative_(last, last.weight * network_scale)
    error = _map_error(model, probe, matrix, offset)
    return GaussianMapInit(matrix=matrix, offset=offset, error=error)


def _set_output_quadratic(model: FICNN | PICNN, half_matrix: Tensor) -> None:
    """Set the output unit's quadratic term to the PSD part of ``half_matrix``.

    Output unit's ``F F^T + diag(d)`` := the PSD part of ``half_matrix`` (float64), with
    ``d`` its smallest eigenvalue and ``F`` the top ``R`` of the rest.
    """
    quadratic = model.quadratic
    values, vectors = torch.linalg.eigh(half_matrix)
    values = values.clamp_min(0.0)
    floor = values.min()
    rest = (values - floor).flip(0)[:quadratic.rank]
    factors = (vectors.flip(1)[:, :quadratic.rank] * rest.sqrt()).T  # (R', D)
    full = quadratic.factors.view(quadratic.rank, quadratic.out_features, quadratic.in_features)
    full[:, -1] = 0.0
    full[:factors.shape[0], -1] = factors.to(full.dtype)
    diagonal = quadratic.diagonal.weight.detach().clone()
    diagonal[-1] = floor.to(diagonal.dtype)
    set_nonnegative_(quadratic.diagonal, diagonal)


def _set_output_linear(model: FICNN | PICNN, offset: Tensor) -> None:
    """The output unit's term linear in ``y`` := ``offset`` (and no constant)."""
    if isinstance(model, FICNN):
        model.passthrough.weight[-1] = offset
        model.passthrough.bias[-1] = 0.0
        return
    model.y_layers[-1].weight[0] = offset
    split = model.split_sizes[-1]
    y_gate_weight = model.u_maps[-1].weight.split(split)[-2]
    y_gate_bias = model.u_maps[-1].bias.split(split)[-2]
    y_gate_weight.zero_()  # the output's y-gate is 1 for every context
    y_gate_bias.fill_(1.0)


def _map_error(model: FICNN | PICNN, probe: Tensor, matrix: Tensor, offset: Tensor) -> float:
    x = None
    if model.context_shape is not None:
        x = torch.zeros(probe.shape[0], *model.context_shape, dtype=probe.dtype,
                        device=probe.device)
    expected = probe @ matrix.T + offset
    got = gradient_map(model)(probe, x=x)
    error = (got - expected).norm(dim=1) / expected.norm(dim=1).clamp_min(1.0)
    return float(error.max())
