"""The batched problem every solver works on: ``min f(x, y)`` over a box with fixed entries."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..nn.conditioned import ConditionedEnergy
from ..nn.energy import EnergyTraits, energy_traits
from ..nn.input_checks import check_tensor, validation
from .domain import Box, unbounded

FRAME_PROPERTIES = ("bounded", "all_free", "step_scale", "centre")
"""What a :class:`Problem` computes once from its bounds alone (shared by problems on the
same bounds: :meth:`Problem.with_energy`, the frames :class:`icnn.Argmin` reuses)."""


@dataclass
class Problem:
    """``min_y f(x, y)`` s.t. ``lo <= y <= hi``, per example, batched.

    Fixed coordinates are folded into the bounds (``lo = hi = value`` there) and excluded from
    ``free``. Every method reads the problem through :meth:`value` and :meth:`value_and_grad`.

    Attributes:
        model: module convex in ``y``; called ``model(y)`` or ``model(x, y)``.
        traits: what the model declares (:class:`icnn.EnergyTraits`), read once per call;
            solvers consult only this, never the model's config.
        x: ``(batch, *context)`` or None.
        lo, hi: ``(batch, *shape)`` bounds (``+-inf`` where unbounded); with ``free``,
            read-only once built (:data:`FRAME_PROPERTIES` are computed from them once, and
            :class:`icnn.Argmin` shares them between calls): build a new problem instead.
        free: ``(batch, *shape)`` bool, the coordinates the solver may move.
        bounded: True if every free coordinate has finite bounds on both sides.
        energy: optional fast evaluator ``energy(y, index) -> (len(index),)`` of ``f(x[index], y)``
            (``index`` None: the whole batch), e.g. with the context path of a PICNN computed
            once (:func:`icnn.solvers.conditioning.conditioned_energy`); None calls the model.
    """

    model: nn.Module
    x: Tensor | None
    lo: Tensor
    hi: Tensor
    free: Tensor
    domain: Box
    traits: EnergyTraits
    energy: Callable[[Tensor, Tensor | None], Tensor] | None = None

    @property
    def batch(self) -> int:
        """Number of problems in the batch."""
        return self.lo.shape[0]

    @property
    def shape(self) -> tuple[int, ...]:
        """Per-example shape of ``y``."""
        return tuple(self.lo.shape[1:])

    @functools.cached_property
    def bounded(self) -> bool:
        """True if every free coordinate has finite bounds (computed once per problem)."""
        finite = torch.isfinite(self.lo) & torch.isfinite(self.hi)
        return bool((finite | ~self.free).all())

    @functools.cached_property
    def all_free(self) -> bool:
        """True when no coordinate is fixed (gradients then need no masking)."""
        return bool(self.free.all())

    @functools.cached_property
    def step_scale(self) -> Tensor:
        """``(batch,)`` a natural first step length: half the widest finite free side, else 1.

        Read-only (computed once per problem; a reused frame shares it).
        """
        width = (self.hi - self.lo).flatten(1)
        width = torch.where(torch.isfinite(width) & self.free.flatten(1), width,
                            torch.zeros_like(width))
        scale = 0.5 * width.amax(dim=1) if width.shape[1] else width.new_zeros(self.batch)
        return torch.where(scale > 0, scale, torch.ones_like(scale))

    @functools.cached_property
    def centre(self) -> Tensor:
        """``(batch, *shape)`` the box centre (0 where a bound is infinite), feasible; read-only."""
        finite = torch.isfinite(self.lo) & torch.isfinite(self.hi)
        centre = torch.where(finite, 0.5 * (self.lo + self.hi), torch.zeros_like(self.lo))
        return self.project(centre)

    def with_energy(self, energy: Callable[[Tensor, Tensor | None], Tensor] | None) -> Problem:
        """The same problem evaluated through ``energy``.

        What was computed once of it (:attr:`bounded`, :attr:`all_free`, :attr:`step_scale`,
        :attr:`centre`) carries over, not made again.
        """
        return self.with_frame(dataclasses.replace(self, energy=energy))

    def reframed(self, model: nn.Module, x: Tensor | None, domain: Box,
                 traits: EnergyTraits | None) -> Problem:
        """A problem on these bounds for ``model`` at ``x``, with the once-computed properties.

        What a later solve on the same bounds reuses (``x=None``: the bounds alone, as
        :class:`icnn.Argmin` keeps them).
        """
        return self.with_frame(Problem(model=model, x=x, lo=self.lo, hi=self.hi, free=self.free,
                                       domain=domain, traits=traits))

    def with_frame(self, other: Problem) -> Problem:
        """``other`` with this problem's once-computed properties (the same bounds)."""
        for name in FRAME_PROPERTIES:
            if name in self.__dict__:
                other.__dict__[name] = self.__dict__[name]
        return other

    def project(self, y: Tensor) -> Tensor:
        """Euclidean projection onto the feasible set (box with fixed entries)."""
        return torch.maximum(torch.minimum(y, self.hi), self.lo)

    def value(self, y: Tensor, index: Tensor | None = None) -> Tensor:
        """``f(x, y)``, ``(batch,)``, without input validation.

        With ``index`` (a 1-D long tensor of examples) ``y`` holds only those rows and the
        result is ``f(x[index], y)``: solvers evaluate just the examples still running.
        """
        if self.energy is not None:
            return self.energy(y, index)
        x = self.x if self.x is None or index is None else self.x[index]
        with validation(False):
            return self.model(y) if x is None else self.model(x, y)

    def value_and_grad(self, y: Tensor, *, create_graph: bool = False,
                       index: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``f(x, y)`` ``(batch,)`` and ``grad_y f`` ``(batch, *shape)``, zero on fixed entries.

        With ``create_graph`` the gradient stays differentiable (for unrolled learning);
        ``index`` as in :meth:`value`.
        """
        if create_graph:
            with torch.enable_grad():
                if not y.requires_grad:
                    y = y.requires_grad_(True)
                value = self.value(y, index)
                (grad,) = torch.autograd.grad(value.sum(), y, create_graph=True)
        else:  # autograd's gradient, to the bit; hand-written where the model supplies it
            energy = self.energy if isinstance(self.energy, ConditionedEnergy) \
                else ConditionedEnergy(self.value)
            value, grad = energy.value_and_grad(y, index)
        if not self.all_free:
            grad = grad * (self.free if index is None else self.free[index])
        return value, grad


def build_problem(
    model: nn.Module, x: Tensor | None, domain: Box | None, y0: Tensor | None,
    fixed: tuple[Tensor, Tensor] | None, batch: int | None = None,
    traits: EnergyTraits | None = None, frame: Problem | None = None,
) -> Problem:
    """Validate the inputs of :func:`icnn.argmin` once and build the :class:`Problem`.

    ``traits``: the model's :class:`icnn.EnergyTraits` when the caller has read them already
    (:class:`icnn.Argmin` caches them); None reads them here. ``frame``: an earlier problem
    whose bounds may be reused (:class:`icnn.Argmin`'s repeated solves): they are when no entry
    is fixed, the domain is the same object with bounds given as numbers (nothing to change in
    place), and batch, shape, dtype and device agree; its :data:`FRAME_PROPERTIES` come along.

    Raises:
        ValueError: bad shapes, dtypes, values, domain or fixed entries (the message names
            what was expected and what came).
        TypeError: a model that does not implement :class:`icnn.ConvexEnergy`.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if traits is None:
        traits = energy_traits(model)
    params = next(model.parameters(), None)
    dtype = params.dtype if params is not None else torch.get_default_dtype()
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"expected a float32 or float64 model (the solvers' linear algebra and "
                         f"certificates need them), got {dtype}; convert with model.float()")
    device = params.device if params is not None else torch.device("cpu")
    shape = tuple(model.convex_input_shape)
    context = model.context_shape
    if context is not None and x is None:
        raise ValueError(f"this model is convex in y given a context x of shape (batch, "
                         f"{', '.join(map(str, context))}); pass x")
    if x is not None:
        if context is None:
            raise ValueError("this model takes no context x (it is fully input convex); "
                             "pass x=None")
        check_tensor("x", x, context, dtype=dtype)
        batch = x.shape[0]
    if y0 is not None:
        check_tensor("y0", y0, shape, dtype=dtype, batch=batch)
        batch = y0.shape[0]
    if batch is None:
        raise ValueError("cannot tell the batch size: pass x, y0 or fixed values")
    if batch == 0:
        raise ValueError("expected a batch of at least one example, got an empty batch (0 rows)")
    if domain is None:
        domain = unbounded()
    if not isinstance(domain, Box):
        raise ValueError(f"domain must be None or icnn.Box, got {type(domain).__name__}")
    if frame is not None and fixed is None and _same_frame(frame, domain, batch, shape, dtype,
                                                           device):
        return frame.reframed(model, x, domain, traits)
    lo, hi = domain.bounds(batch, shape, dtype, device)
    both = torch.isfinite(lo) & torch.isfinite(hi)
    if bool((both & ~torch.isfinite(hi - lo)).any()):
        raise ValueError(f"Box bounds are finite but their width overflows {dtype} (|hi - lo| > "
                         f"{torch.finfo(dtype).max:.3g}): use smaller bounds, infinite ones, or "
                         "float64")
    free = torch.ones(batch, *shape, dtype=torch.bool, device=device)
    if fixed is not None:
        if not (isinstance(fixed, tuple | list) and len(fixed) == 2):
            raise ValueError("fixed must be a pair (mask, values)")
        mask, values = fixed
        if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
            raise ValueError(f"fixed mask must be a bool tensor (True where y is fixed), got "
                             f"{mask.dtype if isinstance(mask, Tensor) else type(mask).__name__}; "
                             "a float mask is not cast: pass mask.bool() or mask > 0.5")
        mask = mask.to(device)
        try:
            mask = torch.broadcast_to(mask, (batch, *shape))
            values = torch.broadcast_to(torch.as_tensor(values, dtype=dtype, device=device),
                                        (batch, *shape))
        except RuntimeError as error:
            raise ValueError(f"fixed mask/values must broadcast to y's shape {(batch, *shape)}, "
                             f"got {tuple(mask.shape)} and {tuple(torch.as_tensor(values).shape)}"
                             ) from error
        if not bool(torch.isfinite(values[mask]).all()):
            raise ValueError("fixed values must be finite where the mask is True")
        if bool(((values < lo) | (values > hi))[mask].any()):
            raise ValueError("fixed values must lie inside the domain")
        lo = torch.where(mask, values, lo)
        hi = torch.where(mask, values, hi)
        free = ~mask
    return Problem(model=model, x=x, lo=lo, hi=hi, free=free, domain=domain, traits=traits)


def _same_frame(frame: Problem, domain: Box, batch: int, shape: tuple[int, ...],
                dtype: torch.dtype, device: torch.device) -> bool:
    """Whether ``frame``'s bounds are those a new problem on these arguments would build."""
    numbers = all(isinstance(b, int | float) and not isinstance(b, bool)
                  for b in (domain.lo, domain.hi))
    return (numbers and frame.domain is domain and frame.batch == batch
            and frame.shape == shape and frame.lo.dtype == dtype and frame.lo.device == device
            and frame.all_free)
