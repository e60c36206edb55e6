"""The y-path of a dense ICNN written as a stack of affine maps, for exact solvers.

For a fixed context ``x``, layer ``i`` of an FICNN or PICNN computes
``z_{i+1} = g_i(A_i z_i + B_i y + c_i)`` with ``A_i >= 0``. With piecewise-linear ``g_i`` the
minimisation of ``z_k`` over ``y`` is a linear program (paper Section 4.1).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from .activations import ConvexActivation


@dataclass
class AffineLayer:
    """One layer ``z_out = activation(z_weight @ z_in + y_weight @ y + bias)``.

    Attributes:
        z_weight: ``(B, out, in)`` non-negative, or None for the first layer.
        y_weight: ``(B, out, y_dim)``.
        bias: ``(B, out)``.
        activation: the layer's activation.

    ``B`` is 1 when the layer does not depend on the context (FICNN), else the batch size.
    """

    z_weight: Tensor | None
    y_weight: Tensor
    bias: Tensor
    activation: ConvexActivation
