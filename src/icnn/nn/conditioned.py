"""What a model's ``condition(x)`` returns: the energy at fixed contexts, and its gradient in ``y``.

Solvers evaluate ``f(x, y)`` many times at one ``x``. A model's ``condition(x)`` does the
``y``-independent work once (a PICNN's context path and gates, an FICNN's constrained weights) and
returns a :class:`ConditionedEnergy`: called as ``energy(y, index)`` it gives the values, and
:meth:`ConditionedEnergy.value_and_grad` gives the values and ``grad_y f``.

The gradient is autograd's unless the model supplies a hand-written backward pass (``backward``):
the dense ICNNs do (:class:`icnn.FICNN`, :class:`icnn.PICNN` with the activations that declare
their derivative), with the same operations autograd's backward runs, in the same order, so the
result is autograd's **to the bit** (``tests/nn/test_conditioned.py`` checks it), at about half
the cost at batch 1 (no graph recorded, no engine; ``benchmarks/latency.py``). A solver's
iterates, and every result computed from them, are then the same with either path.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
from torch import Tensor

Value = Callable[[Tensor, Tensor | None], Tensor]
# (y, index, start) -> (value, grad): start (or None) is the gradient accumulated before this one
ValueAndGrad = Callable[[Tensor, Tensor | None, Tensor | None], tuple[Tensor, Tensor]]


_HAND_WRITTEN = [True]


@contextlib.contextmanager
def hand_written_gradients(enabled: bool) -> Iterator[None]:
    """Within the block, :meth:`ConditionedEnergy.value_and_grad` uses (or not) hand-written passes.

    ``enabled=False`` makes every energy take autograd's path: the same results to the bit, at
    autograd's cost (``benchmarks/latency.py --autograd`` times the difference; a test checks
    the agreement).
    """
    previous, _HAND_WRITTEN[0] = _HAND_WRITTEN[0], bool(enabled)
    try:
        yield
    finally:
        _HAND_WRITTEN[0] = previous


class ConditionedEnergy:
    """``energy(y, index) = f(x[index], y)`` with the ``y``-independent parts computed once.

    Args:
        value: ``(y, index) -> (b,)``; ``index`` (a 1-D long tensor, or None for every row)
            picks the contexts ``y``'s rows belong to.
        backward: optional hand-written ``(y, index, start) -> (value, grad)`` computing the
            same value as ``value`` and autograd's gradient of its sum in ``y`` to the bit,
            plus ``start`` when given (autograd adds gradients in the order they arrive; a
            wrapper whose term arrives first passes it as ``start``). None: autograd.

    Shape:
        ``y: (b, *convex_input_shape)`` -> ``(b,)``; gradients have ``y``'s shape.
    """

    def __init__(self, value: Value, backward: ValueAndGrad | None = None) -> None:
        self._value = value
        self._backward = backward

    @property
    def hand_written(self) -> bool:
        """True when :meth:`value_and_grad` runs a hand-written backward pass (no autograd)."""
        return self._backward is not None

    def __call__(self, y: Tensor, index: Tensor | None = None) -> Tensor:
        """``f(x[index], y)``, ``(b,)``."""
        return self._value(y, index)

    def value_and_grad(self, y: Tensor, index: Tensor | None = None, *,
                       start: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Detached ``f(x[index], y)`` ``(b,)`` and ``start + grad_y f`` (``y``'s shape).

        No graph is kept: for a differentiable gradient (unrolled learning) call the energy
        under autograd instead. ``start`` is added first, as autograd adds the gradient of a
        term recorded after this energy.

        Raises:
            ValueError: ``y`` not batched, or with a number of rows other than the contexts
                picked (``index``, or all of them).
        """
        if y.dim() < 2:
            raise ValueError(f"expected y of shape (batch, *convex_input_shape), got a "
                             f"{y.dim()}-d tensor of shape {tuple(y.shape)}")
        if self._backward is not None and _HAND_WRITTEN[0]:
            with torch.no_grad():
                value, grad = self._backward(y.detach(), index, start)
        else:
            with torch.enable_grad():
                leaf = y.detach().requires_grad_(True)
                value = self._value(leaf, index)
                total = gradient_total(value, leaf, start)
                if total.requires_grad:
                    (grad,) = torch.autograd.grad(total, leaf)
                else:  # an energy constant in y
                    grad = torch.zeros_like(leaf)
            value = value.detach()
        if value.shape != y.shape[:1] or grad.shape != y.shape:
            raise ValueError(f"expected one row of y per context row picked (y {tuple(y.shape)} "
                             f"-> values ({y.shape[0]},)), got values {tuple(value.shape)} and "
                             f"gradients {tuple(grad.shape)}: y broadcast against the contexts")
        return value, grad


def gradient_total(value: Tensor, y: Tensor, start: Tensor | None) -> Tensor:
    """The scalar whose gradient in ``y`` is ``start + grad_y sum value``, in autograd's order.

    ``sum value``, then ``y . start`` recorded last, so that its gradient arrives, and is
    added, first (how a wrapper's term that autograd records after the energy accumulates).
    """
    total = value.sum()
    if start is not None:
        total = total + (y * start.detach()).sum()
    return total


def linear_input_grad(grad: Tensor, weight: Tensor, inp: Tensor) -> Tensor:
    """Autograd's gradient of ``F.linear(inp, weight)`` in ``inp`` for 2-D ``inp``, to the bit.

    ``grad: (b, out)``, ``weight: (out, in)``, ``inp: (b, in)`` -> ``(b, in)``. Autograd's matrix
    product backward (``mm_mat1_backward``) computes ``(weight^T grad^T)^T`` when ``inp`` is laid
    out column-major (a ``(1, 1)`` input is) and ``grad weight`` otherwise; the two round
    differently, so the choice is copied here.
    """
    if inp.stride(0) == 1 and inp.stride(1) == inp.shape[0]:
        return weight.t().mm(grad.t()).t()
    return grad.mm(weight)


def accumulate(total: Tensor | None, part: Tensor) -> Tensor:
    """``total + part`` (``part`` when nothing has accumulated yet), autograd's order of sums."""
    return part if total is None else total + part
