r"""The binary negative entropy, one implementation for every user.

The binary negative entropy, the one implementation the bundle entropy method, the max-margin
loss and the RL action barrier share.

On the unit box (paper Section 4.4, Algorithm 2):

.. math:: -H(u) = \sum_j u_j \log u_j + (1 - u_j) \log(1 - u_j), \qquad u \in [0, 1]^n,

convex, ``-n log 2`` at the centre and 0 at the vertices (``0 log 0 = 0``). On a box
``[lo, hi]`` it is taken on the rescaled coordinates ``u = (y - lo) / (hi - lo)``, exactly as
:func:`icnn.solvers.bundle_entropy.solve_bundle_entropy` rescales the box, so a loss that adds
``-H`` and the solver that minimises ``f - H`` speak of the same function.

Outside ``[0, 1]`` the value is ``+inf`` (the convex function's extension), never NaN. At the
faces the derivative ``log u - log(1 - u)`` is infinite; there the gradient is its value at
``u = eps`` (machine epsilon, the nearest interior point a step of unit scale resolves),
``∓log(1/eps)`` (about 36 in float64, 16 in float32). It points inward, so projected solvers that
step onto a face leave it again instead of reading a NaN; a steeper face slope (``log(1/tiny)``,
708) made projected L-BFGS stall at the face, 0.04 above the minimum on ``Box(-1, 2)``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def interior_entropy_terms(u: Tensor) -> Tensor:
    """``u log u + (1 − u) log(1 − u)`` elementwise, strictly inside ``(0, 1)``.

    ``u log u + (1 − u) log(1 − u)`` elementwise for ``u`` strictly inside ``(0, 1)``, without
    the face and outside handling of :func:`entropy_terms`, for a caller that clamps ``u``
    inside (the RL action barrier).

    It is the same function as :func:`entropy_terms` inside, written with ``log1p`` (the
    ICNN-Q results were produced with it): the two differ by at most a few ulps, which keeps
    both the RL table and the bundle-entropy results reproducible to the bit
    (tests/solvers/test_entropy.py checks the agreement).
    """
    return u * torch.log(u) + (1.0 - u) * torch.log1p(-u)


def entropy_hessian_inverse(u: Tensor) -> Tensor:
    """``u (1 − u)``, the inverse of the entropy's diagonal Hessian.

    ``u (1 − u)``, the inverse of the diagonal Hessian ``1/u + 1/(1 − u)`` of ``−H`` in ``u``
    (0 at the faces, where the Hessian is infinite); the implicit gradients of the bundle
    entropy method use it.
    """
    return u * (1.0 - u)


def entropy_terms(u: Tensor) -> Tensor:
    """``u log u + (1 − u) log(1 − u)`` elementwise, same shape as ``u``.

    0 at ``u ∈ {0, 1}``, ``+inf`` outside ``[0, 1]``, NaN only for a NaN ``u``. Twice
    differentiable inside; finite inward-pointing gradient at the faces (the module doc).
    """
    if not u.is_floating_point():
        raise TypeError(f"expected a floating-point u, got dtype {u.dtype}")
    inside = (u > 0) & (u < 1)
    safe = torch.where(inside, u, torch.full_like(u, 0.5))
    # xlogy, as the bundle entropy method and the max-margin loss always computed it
    interior = torch.xlogy(safe, safe) + torch.xlogy(1.0 - safe, 1.0 - safe)
    # value 0 on the faces; the detached difference only carries the inward slope
    steep = -math.log(torch.finfo(u.dtype).eps)
    face_slope = torch.where(u <= 0, torch.full_like(u, -steep), torch.full_like(u, steep))
    on_face = face_slope * (u - u.detach())
    outside = (u < 0) | (u > 1)
    return torch.where(inside, interior,
                       torch.where(outside, torch.full_like(u, math.inf), on_face))


def negative_entropy(u: Tensor, free: Tensor | None = None) -> Tensor:
    r"""``−H(u)`` per example over the free coordinates.

    ``−H(u) = Σ_j u_j log u_j + (1 − u_j) log(1 − u_j)`` per example, over the free
    coordinates.

    Args:
        u: ``(batch, *shape)`` in ``[0, 1]`` (``+inf`` for an example with a coordinate outside).
        free: ``(batch, *shape)`` (or flattened ``(batch, n)``) bool; coordinates where it is
            False contribute 0. None: all coordinates.

    Returns:
        ``(batch,)``.
    """
    if u.ndim < 2:
        raise ValueError(f"expected u of shape (batch, *shape), got {tuple(u.shape)}")
    terms = entropy_terms(u).flatten(1)
    if free is None:
        return terms.sum(-1)
    if free.dtype != torch.bool:
        raise TypeError(f"expected a bool free mask, got dtype {free.dtype}")
    if free.numel() != terms.numel() or free.shape[0] != terms.shape[0]:
        raise ValueError(f"expected free of shape {tuple(u.shape)} (or {tuple(terms.shape)}), "
                         f"got {tuple(free.shape)}")
    free = free.reshape(terms.shape)
    return torch.where(free, terms, torch.zeros_like(terms)).sum(-1)


def check_entropy_box(lo: Tensor, hi: Tensor, active: Tensor | None = None) -> None:
    """Refuse a box on which ``−H`` is undefined.

    A coordinate with ``lo < hi`` (and ``active``, if given) and an infinite bound.

    Raises:
        ValueError: naming how many coordinates have an infinite bound.
    """
    wide = hi > lo if active is None else active
    unbounded = wide & ~(torch.isfinite(lo) & torch.isfinite(hi))
    if bool(unbounded.any()):
        raise ValueError(f"the entropy needs a bounded box: expected finite lo and hi on every "
                         f"free coordinate, got {int(unbounded.sum())} with an infinite bound")


def box_negative_entropy(y: Tensor, lo: Tensor | float, hi: Tensor | float,
                         free: Tensor | None = None) -> Tensor:
    r"""``−H(u)`` on the box ``[lo, hi]``.

    ``u = (y − lo) / (hi − lo)`` on the coordinates with ``lo < hi`` (and ``free``, if given); fixed and
    degenerate (``lo == hi``) coordinates contribute 0, as in the bundle entropy method.

    Args:
        y: ``(batch, *shape)``.
        lo: scalar or tensor broadcastable to ``y``; finite wherever ``lo < hi``.
        hi: scalar or tensor broadcastable to ``y``; finite wherever ``lo < hi``.
        free: optional ``(batch, *shape)`` bool, False on fixed coordinates.

    Returns:
        ``(batch,)``; ``+inf`` for an example with a free coordinate outside ``[lo, hi]``.

    Raises:
        ValueError: a free coordinate with an infinite bound (no entropy on an unbounded side),
            or bounds that do not broadcast to ``y``.
    """
    lo_t = torch.as_tensor(lo, dtype=y.dtype, device=y.device)
    hi_t = torch.as_tensor(hi, dtype=y.dtype, device=y.device)
    try:
        lo_t, hi_t = torch.broadcast_to(lo_t, y.shape), torch.broadcast_to(hi_t, y.shape)
    except RuntimeError as error:
        raise ValueError(f"expected lo {tuple(lo_t.shape)} and hi {tuple(hi_t.shape)} to "
                         f"broadcast to y's shape {tuple(y.shape)}") from error
    width = hi_t - lo_t
    active = width > 0
    if free is not None:
        if free.dtype != torch.bool or tuple(free.shape) != tuple(y.shape):
            raise ValueError(f"expected a bool free mask of shape {tuple(y.shape)}, got "
                             f"{free.dtype} {tuple(free.shape)}")
        active = active & free
    check_entropy_box(lo_t, hi_t, active)
    safe_width = torch.where(active, width, torch.ones_like(width))
    u_raw = (y - torch.where(active, lo_t, torch.zeros_like(lo_t))) / safe_width
    within = (y >= lo_t) & (y <= hi_t)
    # y inside [lo, hi] may round to u just past 0 or 1: clamp the value, keep u's gradient
    u = u_raw + (u_raw.clamp(0.0, 1.0) - u_raw).detach()
    u = torch.where(within | torch.isnan(y), u, u_raw)
    return negative_entropy(torch.where(active, u, torch.zeros_like(u)), active)
