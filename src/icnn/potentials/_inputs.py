"""Checks shared by the potential API: what a potential is and what its inputs must look like."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..nn.energy import EnergyTraits, energy_traits
from ..nn.input_checks import check_tensor


def check_potential(model: object) -> EnergyTraits:
    """The traits of ``model``, checked to be those of a potential.

    The traits of ``model``, which must be an ``nn.Module`` implementing
    :class:`icnn.ConvexEnergy` with float32/float64 parameters.

    Raises:
        TypeError: ``model`` is not a module implementing :class:`icnn.ConvexEnergy`.
        ValueError: its parameters are not float32/float64.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"expected a convex potential (an icnn model or a module implementing "
                        f"icnn.ConvexEnergy), got {type(model).__name__}")
    traits = energy_traits(model)
    dtype = model_dtype(model)
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"expected a float32 or float64 potential, got {dtype}; convert with "
                         "model.float() or model.double()")
    return traits


def model_dtype(model: nn.Module) -> torch.dtype:
    """The dtype of the model's first parameter (the default dtype when it has none)."""
    param = next(model.parameters(), None)
    return param.dtype if param is not None else torch.get_default_dtype()


def check_point_and_context(model: nn.Module, y: object, x: object, *, name: str = "y"
                            ) -> tuple[Tensor, Tensor | None]:
    """Check a point ``y`` and a context ``x`` against the potential's shapes.

    Check ``y: (batch, *convex_input_shape)`` and ``x: (batch, *context_shape)`` (or None
    for a model without context), both of the model's dtype and finite.

    Raises:
        ValueError: a shape, dtype, batch size or finiteness mismatch, or ``x`` given to a
            model without context (or missing for one with context).
    """
    dtype = model_dtype(model)
    y = check_tensor(name, y, tuple(model.convex_input_shape), dtype=dtype)
    if y.shape[0] == 0:
        raise ValueError(f"expected {name} with at least one row, got an empty batch")
    context = model.context_shape
    if context is None:
        if x is not None:
            raise ValueError(f"expected x=None (this potential takes no context), got "
                             f"{type(x).__name__}")
        return y, None
    if x is None:
        raise ValueError(f"expected a context x of shape (batch, {', '.join(map(str, context))}) "
                         "(this potential is conditional), got None")
    x = check_tensor("x", x, tuple(context), dtype=dtype, batch=y.shape[0])
    return y, x
