r"""Certified lower bounds for first-order methods, from aggregated cutting planes.

Every gradient ``g_k`` of a convex ``f`` at ``y_k`` gives a global under-estimator, and with
strong convexity ``mu`` (``f - mu/2 ||y||^2`` convex) a quadratic one:

.. math:: f(y) \ge l_k(y) = f(y_k) + g_k^T (y - y_k) + \tfrac{\mu}{2} \|y - y_k\|^2 .

Any convex combination ``sum_k lam_k l_k`` is an under-estimator too, and its minimum over a box
is separable and closed-form. :class:`CutAggregator` keeps a few exponential moving averages of
the cuts (weights ``beta (1 - beta)^j`` over the last iterates, one ``beta`` per aggregate) and
reports the best of their minima seen so far. For a ReLU network, whose gradient never vanishes
at the optimum, averaging the gradients of the iterates that straddle the kinks produces an
aggregated subgradient near zero, the "aggregate subgradient" of bundle methods, so the bound
closes on the optimum without solving a subproblem.

Near a kink the right weights are not geometric: the last ``memory`` cuts are also kept, and
the weights ``lam`` on the simplex minimising the norm of the aggregated gradient over the
coordinates strictly inside the box (the min-norm element of the recent subgradients' hull, as in
gradient sampling) are found by a few warm-started projected-gradient steps; the bound of that
combination is computed exactly, so any ``lam`` is valid and the heuristic only affects tightness.

The bound needs either ``mu > 0`` or finite bounds on every free coordinate whose aggregated
gradient is non-zero; otherwise it is ``-inf`` (no certificate).

Autograd's derivative of a dense ICNN is a valid subgradient (relu'(0) = 0 lies in [0, 1], and
non-negative weights preserve the chain rule's inequality), so the bound holds at kinks as well.

Rounding: a plane is an under-estimator of ``f`` only up to the rounding of the values it is
built from. A float32 model computes ``f(y)`` with an error of a few ``eps * (|f| + sum_j |g_j
y_j|)`` (its intermediate sums are that large), so a plane through the float32 value, and any
bound built from it, may sit that far above the true minimum: a lower bound above the minimum,
a negative gap and a false ``converged`` (tests/solvers/test_float32_certificates.py). Computing
the planes in float64 does not help. The planes the solvers iterate with stay as computed (so
their iterates, and every result computed with them, are unchanged), and the largest
:func:`rounding_allowance` of the planes behind an example's bound is subtracted from the bound
that is *reported*: a bound is a convex combination (or a box minimum) of planes, so lowering
every plane by at most ``A`` lowers it by at most ``A``. float64 allowances are 0 (their
rounding, ``1e-16`` relative, is below any tolerance a solver is asked for).
"""

from __future__ import annotations

import torch
from torch import Tensor

DECAYS = (1.0, 0.5, 0.2, 0.05)
MEMORY = 8
MIN_NORM_STEPS = 10
ROUNDING_ULPS = 8.0  # observed: float32 ICNN planes exceed f by up to 3.5 eps (|f| + |g||y|)


def rounding_allowance(value: Tensor, grad: Tensor, point: Tensor) -> Tensor:
    """``(b,)`` float64: how far a plane through ``value`` may sit above ``f`` by rounding.

    ``ROUNDING_ULPS * eps * (|f| + sum_j |grad_j| * point_j)`` with ``eps`` of ``value``'s dtype;
    zero for float64 values. ``point`` ``(b, n)`` bounds ``|y|`` in the coordinates of ``grad``
    ``(b, n)`` (the bundle methods pass ``u + |lo| / width`` for gradients in ``u``).
    """
    if value.dtype == torch.float64:
        return torch.zeros_like(value)
    return _allowance(value.double(), grad.double(), point.double(), torch.finfo(value.dtype).eps)


def _allowance(value: Tensor, grad: Tensor, point: Tensor, eps: float) -> Tensor:
    """:func:`rounding_allowance` of float64 copies, for values computed with ``eps``."""
    b = value.shape[0]
    products = grad.abs() * point.abs()
    size = value.abs() + products.reshape(b, products[0].numel() if b else 0).sum(-1)
    return ROUNDING_ULPS * eps * size


class CutAggregator:
    """Running lower bounds ``(batch,)`` on ``min_{lo <= y <= hi} f(y)``.

    Args:
        lo, hi: ``(batch, *shape)`` bounds (fixed coordinates have ``lo == hi``).
        mu: strong-convexity modulus of ``f`` (0 if unknown).
        decays: one EMA weight ``beta`` per aggregate (``1.0``: the latest cut alone).

        host_reads: whether :meth:`add` may read one boolean back to the host (None: on a CPU
            tensor, where that costs nothing). With it, a batch whose cuts are all finite skips
            the masking; without it (CUDA, a compiled solver), every cut is masked on the device.
            The bounds are the same either way.

    All arithmetic is in float64 on ``lo``'s device. A cut with a non-finite value or gradient
    is masked out of its row.
    """

    def __init__(self, lo: Tensor, hi: Tensor, mu: float = 0.0,
                 decays: tuple[float, ...] = DECAYS, host_reads: bool | None = None) -> None:
        batch = lo.shape[0]
        self.lo = lo.reshape(batch, -1).double()
        self.hi = hi.reshape(batch, -1).double()
        self.mu = float(mu)
        self.decays = torch.tensor(decays, dtype=torch.float64, device=lo.device)[:, None]
        self._ones = torch.ones_like(self.decays)
        self._keep = 1.0 - self.decays
        n_agg, n = len(decays), self.lo.shape[1]
        self.n = n
        zeros = lo.new_zeros
        # the aggregates, packed so that one mix updates them all: per aggregate and example
        # [sum lam g_k | sum lam y_k | sum lam (f_k - g_k^T y_k) | sum lam ||y_k||^2] with
        # mu > 0, [sum lam g_k | sum lam (f_k - g_k^T y_k)] otherwise (a linear bound needs no
        # points); each kind of bound allocates only its own state
        width = 2 * n + 2 if self.mu > 0.0 else n + 1
        self.state = zeros(n_agg, batch, width, dtype=torch.float64)
        self.seen = torch.zeros(batch, dtype=torch.bool, device=lo.device)
        self.host_reads = lo.device.type == "cpu" if host_reads is None else bool(host_reads)
        self._all_seen = False  # every row has a cut (known on the host): beta is the decays
        if self.mu == 0.0:  # the last MEMORY cuts and their min-norm weights
            self.cut_grad = zeros(batch, MEMORY, n, dtype=torch.float64)
            self.cut_const = zeros(batch, MEMORY, dtype=torch.float64)
            self.cut_valid = torch.zeros(batch, MEMORY, dtype=torch.bool, device=lo.device)
            self.weights = zeros(batch, MEMORY, dtype=torch.float64)
            self.count = torch.zeros(batch, dtype=torch.long, device=lo.device)
        self.bound = torch.full((batch,), -torch.inf, dtype=torch.float64, device=lo.device)
        # the largest rounding allowance of the cuts added per example (0 in float64)
        self.allowance = torch.zeros(batch, dtype=torch.float64, device=lo.device)

    @property
    def certified_bound(self) -> Tensor:
        """``(batch,)`` the bound to report: ``bound`` lowered by its planes' rounding allowance.

        ``bound`` itself drives the stopping test.
        """
        return self.bound - self.allowance

    def add(self, y: Tensor, value: Tensor, grad: Tensor, index: Tensor | None = None) -> Tensor:
        """Add the cut at ``y`` (rows ``index``) and return the updated bounds of those rows.

        ``index`` None (the whole batch, in order) writes the state without gathers and
        scatters; the arithmetic, and so every bound, is the same either way. A row whose value
        or gradient is not finite (a barrier's face, an overflow) bounds nothing: its state and
        bound stay as they were.
        """
        whole = index is None
        rows = slice(None) if whole else index
        n = self.n
        y = y.reshape(y.shape[0], n)
        grad = grad.reshape(grad.shape[0], n)
        eps = torch.finfo(value.dtype).eps
        rounds = value.dtype != torch.float64  # float64 allowances are 0: nothing to raise
        value = value.double()
        y, g = y.double(), grad.double()
        finite = self._finite_rows(value, g)
        if rounds:
            allowance = _allowance(value, g, y, eps)
            if finite is not None:
                allowance = torch.where(finite, allowance, 0.0)
            if whole:
                self.allowance = torch.maximum(self.allowance, allowance)
            else:
                self.allowance[rows] = torch.maximum(self.allowance[rows], allowance)
        const = (value - (g * y).sum(-1))[:, None]
        cut = (torch.cat([g, y, const, y.square().sum(-1)[:, None]], dim=1) if self.mu > 0.0
               else torch.cat([g, const], dim=1))
        seen = self.seen if whole else self.seen[rows]
        if whole and self._all_seen:
            beta, keep = self.decays, self._keep  # (A, 1)
        else:
            beta = torch.where(seen[None, :], self.decays, self._ones)  # (A, b): a first cut alone
            keep = 1.0 - beta
        old = self.state if whole else self.state[:, rows]
        state = keep[..., None] * old + beta[..., None] * cut
        if finite is None:
            seen = torch.ones_like(seen) if whole else seen.fill_(True)
            self._all_seen = self._all_seen or whole
        else:
            state = torch.where(finite[None, :, None], state, old)
            seen = seen | finite
        if whole:
            self.state, self.seen = state, seen
        else:
            self.state[:, rows], self.seen[rows] = state, seen
        bound = self._minimum(state, self.lo if whole else self.lo[rows],
                              self.hi if whole else self.hi[rows]).amax(dim=0)
        if self.mu == 0.0:
            bound = torch.maximum(bound, self._bundle_bound(rows, y, g, value, finite))
        if finite is not None:
            bound = torch.where(finite, bound, -torch.inf)
        if whole:
            self.bound = torch.maximum(self.bound, bound)
            return self.bound
        self.bound[rows] = torch.maximum(self.bound[rows], bound)
        return self.bound[rows]

    def _finite_rows(self, value: Tensor, g: Tensor) -> Tensor | None:
        """``(b,)`` bool, the rows whose cut is finite; None when all are (read on the host).

        NaN and inf propagate into ``value + sum g``, and so does an overflowing sum.
        """
        finite = torch.isfinite(value + g.sum(-1))
        if self.host_reads and bool(finite.all()):
            return None
        return finite

    def _minimum(self, state: Tensor, lo: Tensor, hi: Tensor) -> Tensor:
        """``min_{lo <= y <= hi}`` of each aggregated cut in ``state`` ``(A, b, width)``, ``(A, b)``."""
        n = self.n
        grad, const = state[..., :n], state[..., -2 if self.mu > 0.0 else -1]
        if self.mu > 0.0:
            point, square = state[..., n:2 * n], state[..., -1]
            # l(y) = const + grad^T y + mu/2 (||y||^2 - 2 point^T y + square)
            linear = grad - self.mu * point
            y = torch.minimum(torch.maximum(-linear / self.mu, lo), hi)
            return (const + (linear * y).sum(-1) + 0.5 * self.mu * y.square().sum(-1)
                    + 0.5 * self.mu * square)
        # linear cut: each coordinate at the bound its gradient points away from
        at = torch.where(grad > 0, lo.expand_as(grad), hi.expand_as(grad))
        terms = torch.where(grad == 0, torch.zeros_like(grad), grad * at)
        return const + terms.sum(-1)

    def aggregate_gradient(self, rows: Tensor) -> Tensor:
        """``(b, n)`` the min-norm combination of the recent cuts' gradients.

        A descent direction at a kink, where a single gradient may not be one.

        Raises:
            ValueError: with ``mu > 0``, which keeps no recent cuts (its bound needs none).
        """
        if self.mu > 0.0:
            raise ValueError(f"expected mu == 0 (the recent cuts are kept only then), got "
                             f"mu = {self.mu}")
        return (self.weights[rows][..., None] * self.cut_grad[rows]).sum(1)

    def _bundle_bound(self, rows, y: Tensor, g: Tensor, value: Tensor, finite: Tensor) -> Tensor:
        """Store the cut, re-weight the recent cuts towards a min-norm gradient, bound them.

        Rows where ``finite`` is False keep their memory (their bound is masked by the caller);
        ``finite`` None: every row is finite.
        """
        b = y.shape[0]
        arange = torch.arange(b, device=y.device)
        old_count = self.count[rows]
        slot = old_count % MEMORY
        old = (self.cut_grad[rows], self.cut_const[rows], self.cut_valid[rows],
               self.weights[rows])
        grads, consts, valid, weights = old if finite is None else (t.clone() for t in old)
        grads[arange, slot] = g
        consts[arange, slot] = value - (g * y).sum(-1)
        valid[arange, slot] = True
        weights[arange, slot] = 0.0
        lo, hi = self.lo[rows], self.hi[rows]
        inside = ((y > lo) & (y < hi)).double()  # (b, n)
        masked = grads * inside[:, None, :]
        gram = masked @ masked.transpose(1, 2)  # (b, m, m)
        step = 1.0 / gram.diagonal(dim1=1, dim2=2).sum(-1).clamp_min(1e-300)
        # start from the old weights mixed with the newest cut, then projected gradient steps
        lam = torch.where(valid, weights, torch.zeros_like(weights))
        lam[arange, slot] += 0.5
        lam = _project_simplex(lam, valid)
        for _ in range(MIN_NORM_STEPS):
            lam = _project_simplex(lam - step[:, None] * (gram @ lam[..., None])[..., 0], valid)
        if finite is None:
            self.cut_grad[rows], self.cut_const[rows] = grads, consts
            self.cut_valid[rows], self.weights[rows] = valid, lam
            self.count[rows] = old_count + 1
        else:
            keep = finite[:, None]
            self.cut_grad[rows] = torch.where(keep[..., None], grads, old[0])
            self.cut_const[rows] = torch.where(keep, consts, old[1])
            self.cut_valid[rows] = torch.where(keep, valid, old[2])
            self.weights[rows] = torch.where(keep, lam, old[3])
            self.count[rows] = old_count + finite.long()
        grad = (lam[..., None] * grads).sum(1)
        at = torch.where(grad > 0, lo, hi)
        terms = torch.where(grad == 0, torch.zeros_like(grad), grad * at)
        return (lam * consts).sum(-1) + terms.sum(-1)


def _project_simplex(v: Tensor, valid: Tensor) -> Tensor:
    """Euclidean projection of each row of ``v`` onto the simplex over its ``valid`` entries."""
    v = torch.where(valid, v, torch.full_like(v, -1e300))
    u = v.sort(dim=-1, descending=True).values
    css = u.cumsum(-1) - 1.0
    k = torch.arange(1, v.shape[-1] + 1, device=v.device, dtype=v.dtype)
    cond = (u - css / k) > 0
    rho = cond.to(torch.int64).cumsum(-1).argmax(-1, keepdim=True)
    tau = css.gather(-1, rho) / (rho + 1).to(v.dtype)
    return torch.where(valid, (v - tau).clamp_min(0.0), torch.zeros_like(v))
