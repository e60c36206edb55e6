r"""The gradient map ``T(x, y) = \nabla_y f(x, y)`` of a convex potential (Brenier's map)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..nn.input_checks import check_tensor, validation
from ._inputs import check_point_and_context, check_potential


class GradientMap(nn.Module):
    r"""``T(y, x) = \nabla_y f(x, y)`` for a potential ``f`` convex in ``y``, batched.

    The map is differentiable: called with gradients enabled it keeps the graph
    (``create_graph=True``), so a loss on ``T(y)`` trains the potential's parameters and
    back-propagates to ``y`` and ``x``; under :func:`torch.no_grad` it returns a detached
    tensor. Its parameters are the potential's (``T.model``).

    .. warning:: **Argument order.** The map takes the point first, ``T(y, x)``, while the
       model takes the context first, ``f(x, y)`` (a PICNN). Pass the context by keyword,
       ``T(y, x=x)``: the positional form ``T(y, x)`` is kept for compatibility, and when
       ``x`` and ``y`` have the same shape a swap cannot be detected.

    Args:
        model: a module implementing :class:`icnn.ConvexEnergy` (FICNN ``f(y)``, PICNN
            ``f(x, y)``, or any wrapper), float32 or float64.

    Shape:
        ``y: (batch, *convex_input_shape)``, ``x: (batch, *context_shape)`` or None ->
        ``(batch, *convex_input_shape)``.

    Raises:
        TypeError: ``model`` does not implement :class:`icnn.ConvexEnergy`.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        check_potential(model)
        self.model = model

    def forward(self, y: Tensor, x: Tensor | None = None) -> Tensor:
        r"""``\nabla_y f(x, y)``, ``(batch, *convex_input_shape)``.

        Raises:
            ValueError: ``y``/``x`` of the wrong shape, dtype or batch size, non-finite, or
                ``x`` given to a potential without context (or missing for a conditional one).
        """
        y, x = check_point_and_context(self.model, y, x)
        keep = torch.is_grad_enabled()
        with torch.enable_grad():
            y_in = y if y.requires_grad else y.detach().requires_grad_(True)
            value = self._value(y_in, x)
            (grad,) = torch.autograd.grad(value.sum(), y_in, create_graph=keep)
        return grad

    def hvp(self, y: Tensor, v: Tensor, x: Tensor | None = None) -> Tensor:
        r"""Hessian-vector products ``\nabla_y^2 f(x, y) v`` per example.

        Args:
            y: ``(batch, *convex_input_shape)`` points.
            v: ``(batch, *convex_input_shape)`` directions.
            x: ``(batch, *context_shape)`` or None.

        Returns:
            ``(batch, *convex_input_shape)``; differentiable when gradients are enabled. A
            piecewise-linear (ReLU) part contributes zero, its Hessian almost everywhere.

        Raises:
            ValueError: bad shapes, dtypes or non-finite entries, as :meth:`forward`.
        """
        y, x = check_point_and_context(self.model, y, x)
        v = check_tensor("v", v, tuple(self.model.convex_input_shape), dtype=y.dtype,
                         batch=y.shape[0])
        keep = torch.is_grad_enabled()
        with torch.enable_grad():
            y_in = y if y.requires_grad else y.detach().requires_grad_(True)
            value = self._value(y_in, x)
            (grad,) = torch.autograd.grad(value.sum(), y_in, create_graph=True)
            product = None
            if grad.requires_grad:
                (product,) = torch.autograd.grad((grad * v).sum(), y_in, create_graph=keep,
                                                 allow_unused=True)
        if product is None:  # the gradient does not depend on y: a linear potential
            product = torch.zeros_like(y)
        return product

    def _value(self, y: Tensor, x: Tensor | None) -> Tensor:
        with validation(False):  # checked at the door
            return self.model(y) if x is None else self.model(x, y)

    def extra_repr(self) -> str:
        """The potential's class."""
        return f"potential={type(self.model).__name__}"


def gradient_map(model: nn.Module) -> GradientMap:
    r"""The gradient map ``T(y, x=None) = \nabla_y f(x, y)`` of a convex potential.

    Note the order: ``T(y, x=x)`` (point first, context by keyword) for a model ``f(x, y)``.

    Example:
        >>> f = icnn.FICNN(2, hidden=(16,), activation="softplus", strong_convexity=1.0)
        >>> T = icnn.gradient_map(f)
        >>> T(torch.randn(5, 2)).shape
        torch.Size([5, 2])

    Raises:
        TypeError: ``model`` does not implement :class:`icnn.ConvexEnergy`.
        ValueError: its parameters are not float32/float64.
    """
    return GradientMap(model)
