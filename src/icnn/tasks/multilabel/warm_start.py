r"""Proposition 2 as an initialisation: a PICNN energy that starts as the trained baseline.

The baseline's logits are ``phi(x) = W_o BN(u_1) + b_o`` with ``u_1 = ReLU(W_1 x + b_1)``. In
eval mode BatchNorm is the affine map ``BN(u) = a o u + c``, so ``phi(x) = (W_o diag(a)) u_1 +
(W_o c + b_o)`` exactly. The PICNN's output layer holds the term
``W^(y)_1 (y o (W^(yu)_1 u_1 + b^(y)_1))``; with

* the x-path ``u_1 = ReLU(W_1 x + b_1)`` (the baseline's hidden layer),
* the y gate ``W^(yu)_1 = W_o diag(a)``, ``b^(y)_1 = W_o c + b_o`` (so the gate equals
  ``phi(x)``) and ``W^(y)_1 = -1^T``,
* the y-independent term ``W^(u)_1 u_1 + b_1 = 0``,

that term is ``-phi(x)^T y``, and bundle-entropy inference
``argmin_{y in [0,1]^L} -phi(x)^T y - H(y) = sigmoid(phi(x))`` reproduces the baseline's
probabilities. The convex y-path hidden layer ``z_1`` (the label interactions) keeps its usual
initialisation scaled by ``z_scale``: its contribution to the energy is ``O(z_scale)``, and
``z_scale = 0`` makes the energy exactly the baseline's (but stalls the z-path's gradients
behind ``ReLU(0)``; fine-tuning wants a small positive scale).
"""

from __future__ import annotations

import torch
from torch import nn

from .models import FeedForward, build_picnn


@torch.no_grad()
def folded_output_layer(ff: FeedForward) -> tuple[torch.Tensor, torch.Tensor]:
    """``(W, b)`` with ``phi(x) = W u_1 + b``.

    The baseline's eval-mode BatchNorm folded into its output layer; ``W: (L, hidden)``, ``b: (L,)``.
    """
    norm: nn.BatchNorm1d = ff.net[2]
    out: nn.Linear = ff.net[4]
    scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
    shift = norm.bias - norm.running_mean * scale
    return out.weight * scale, out.weight @ shift + out.bias


@torch.no_grad()
def picnn_from_feedforward(ff: FeedForward, y_hidden: int = 200, z_scale: float = 0.01,
                           strong_convexity: float = 0.0, linear_scale: float = 1.0) -> nn.Module:
    """A PICNN ``f(x, y)`` equal to ``-phi(x)^T y + O(z_scale)`` for the baseline ``ff``.

    Args:
        ff: trained :class:`FeedForward` (its BatchNorm statistics are used, eval mode).
        y_hidden: width of the PICNN's convex y-path hidden layer.
        z_scale: scale of that layer's initial pre-activations (``>= 0``; 0: exactly the
            baseline's energy).
        strong_convexity: ``mu`` of the PICNN (0 keeps the exact equivalence).
        linear_scale: ``c > 0`` in the linear term ``-c phi(x)^T y``: the entropy weight ``w``
            of :mod:`.entropy_weight` (``argmin f - w H`` is then ``sigmoid(phi(x))``).

    Returns:
        :class:`icnn.PICNN` with ``x_hidden = (ff hidden,)`` and ``hidden = (y_hidden,)``, drawn
        from ``torch``'s global RNG for the parts the baseline does not fix.
    """
    if z_scale < 0:
        raise ValueError(f"expected z_scale >= 0, got {z_scale}")
    if not linear_scale > 0:
        raise ValueError(f"expected linear_scale > 0, got {linear_scale}")
    x_dim, n_labels, hidden = (ff.config[k] for k in ("x_dim", "n_labels", "hidden"))
    picnn = build_picnn(x_dim, n_labels, hidden=(y_hidden,), x_hidden=(hidden,),
                        strong_convexity=strong_convexity)
    first: nn.Linear = ff.net[0]
    picnn.x_layers[0].weight.copy_(first.weight)
    picnn.x_layers[0].bias.copy_(first.bias)
    weight, bias = folded_output_layer(ff)
    out_map = picnn.u_maps[1]
    # u_maps[1] rows: [W^(zu) (y_hidden) | W^(yu) (L) | W^(u) (1)]
    _, gate_w, lin_w = out_map.weight.split(picnn.split_sizes[1])
    _, gate_b, lin_b = out_map.bias.split(picnn.split_sizes[1])
    gate_w.copy_(weight)
    gate_b.copy_(bias)
    lin_w.zero_()
    lin_b.zero_()
    picnn.y_layers[1].weight.fill_(-linear_scale)
    # z_1 = ReLU(W^(y)_0 (y o gate_0) + W^(u)_0 x + b_0): scaling its pre-activation scales z_1
    picnn.y_layers[0].weight.mul_(z_scale)
    _, first_lin_w = picnn.u_maps[0].weight.split(picnn.split_sizes[0])
    _, first_lin_b = picnn.u_maps[0].bias.split(picnn.split_sizes[0])
    first_lin_w.mul_(z_scale)
    first_lin_b.mul_(z_scale)
    return picnn
