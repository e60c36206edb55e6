"""Convolutional input convex networks (paper Section 3.2): convex in an image ``y``.

Both models follow the DQN-like network of the paper's Olivetti experiment (Section 6.3) and the
authors' completion code: a stack of strided convolutions, then a dense head with a width-1
linear output. Each conv stage ``l`` has kernel ``k_l`` and stride ``s_l``, and TensorFlow-style
"same" padding, so a ``(H, W)`` input leaves stage ``l`` with size ``(ceil(H/s_l), ceil(W/s_l))``;
when ``H`` and ``W`` are multiples of ``s_l`` that is the symmetric padding ``(k_l - s_l) // 2``,
and a 64x32 half-face maps to 16x8 -> 8x4 -> 8x4 with the default geometry.

The convex input enters every stage through a passthrough ``W^(y)_l * ybar_l`` where
``ybar_l`` has the spatial size of ``z_l``: ``ybar_0 = y`` and ``ybar_{l+1} = D_l * ybar_l + d_l``,
a learned ``C_y``-channel convolution with stage ``l``'s geometry (the role of ``S`` in the
paper; the authors' code does the same). Every ``ybar_l`` is affine in ``y``, so each stage's
pre-activation is ``(non-negative map of convex z_l) + (affine in y)`` and Proposition 1 applies.
The dense head takes the flattened last ``z`` and ``ybar_L``, except that the output layer's y
term reads the full-resolution ``y`` (the authors' dense layers had no y term at all): with it
the PICNN can represent ``phi(x)^T y`` for any feedforward ``phi`` (Proposition 2), i.e. a
per-pixel, x-dependent linear term, which a bundle-entropy prediction ``sigmoid(-grad_y f)``
needs at full resolution.

:class:`ConvPICNN` also offers ``convex=False``, an ablation with unconstrained ``W^(z)`` (the
paper's "ICNN - Nonconvex" row); it is **not** convex in ``y`` and says so (``is_convex``).

Zero padding, convolution and flattening are linear maps; with non-negative filters they are
non-negative linear maps of ``z``, which keeps convexity.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .activations import ConvexActivation, make_activation
from .base import ConvexModel, check_sizes, check_strong_convexity
from .constraints import check_constraint
from .init import check_init, init_free_, init_nonnegative_, redraw_default_nonnegative_
from .layers import NonNegativeConv2d, NonNegativeLinear
from .picnn import _X_ACTIVATIONS, _check_x_activation

DEFAULT_CHANNELS = (32, 64, 64)
DEFAULT_KERNEL_SIZES = (8, 4, 3)
DEFAULT_STRIDES = (4, 2, 1)
DEFAULT_DENSE = (512,)


@dataclass(frozen=True)
class ConvStage:
    """Geometry of one conv stage: every convolution of stage ``l`` uses it.

    Attributes:
        kernel, stride: of the stage's convolutions.
        padding: ``(pad_h, pad_w)`` given to ``nn.Conv2d`` (the symmetric part).
        extra_pad: ``(0, right, 0, bottom)`` for ``F.pad`` when the "same" padding is odd.
        in_size, out_size: spatial ``(H, W)`` before and after the stage.
    """

    kernel: int
    stride: int
    padding: tuple[int, int]
    extra_pad: tuple[int, int, int, int]
    in_size: tuple[int, int]
    out_size: tuple[int, int]

    def pad(self, t: Tensor) -> Tensor:
        """Apply the asymmetric part of the padding (no-op when symmetric)."""
        return F.pad(t, self.extra_pad) if any(self.extra_pad) else t

    def conv_kwargs(self) -> dict[str, Any]:
        """``kernel_size``, ``stride`` and ``padding`` for ``nn.Conv2d``."""
        return {"kernel_size": self.kernel, "stride": self.stride, "padding": self.padding}


def conv_stages(
    size: tuple[int, int], kernel_sizes: Sequence[int], strides: Sequence[int]
) -> list[ConvStage]:
    """The stages of a conv stack with "same" padding, from the input size ``(H, W)``."""
    stages = []
    for kernel, stride in zip(kernel_sizes, strides, strict=True):
        pads, out = [], []
        for extent in size:
            n_out = -(-extent // stride)
            total = max((n_out - 1) * stride + kernel - extent, 0)
            pads.append((total // 2, total - total // 2))
            out.append(n_out)
        (top, bottom), (left, right) = pads
        stages.append(ConvStage(
            kernel, stride, (top, left), (0, right - left, 0, bottom - top),
            tuple(size), tuple(out),
        ))
        size = tuple(out)
    return stages


def _check_image_shape(name: str, shape: Any) -> tuple[int, int, int]:
    try:
        values = tuple(int(s) for s in shape)
    except TypeError as error:
        raise ValueError(f"{name} must be (C, H, W) of positive ints, got {shape!r}") from error
    if len(values) != 3 or any(v <= 0 for v in values):
        raise ValueError(f"{name} must be (C, H, W) of positive ints, got {shape!r}")
    return values  # type: ignore[return-value]


def _check_geometry(
    channels: Any, kernel_sizes: Any, strides: Any
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    channels = check_sizes("channels", channels)
    kernel_sizes = check_sizes("kernel_sizes", kernel_sizes)
    strides = check_sizes("strides", strides)
    if not len(channels) == len(kernel_sizes) == len(strides):
        raise ValueError(
            "channels, kernel_sizes and strides must have one entry per conv stage, got lengths "
            f"{len(channels)}, {len(kernel_sizes)}, {len(strides)}"
        )
    return channels, kernel_sizes, strides


def _activations(first: ConvexActivation, hidden: ConvexActivation, n_layers: int) -> nn.ModuleList:
    """``[first, hidden, ..., hidden, identity]`` for ``n_layers >= 2`` layers."""
    return nn.ModuleList(
        [first] + [make_activation(hidden) for _ in range(n_layers - 2)]
        + [ConvexActivation("identity")]
    )


def _slope(activation: ConvexActivation) -> float:
    return activation.params.get("negative_slope", 0.0)


class ConvFICNN(ConvexModel):
    r"""Fully input convex CNN ``f(y)`` over images ``y: (batch, C, H, W)``.

    .. math::
        z_1 &= g_0(W^{(y)}_0 * \bar y_0 + b_0), \qquad
        z_{l+1} = g_l(W^{(z)}_l * z_l + W^{(y)}_l * \bar y_l + b_l), \\
        \bar y_0 &= y, \qquad \bar y_{l+1} = D_l * \bar y_l + d_l,

    for the conv stages, then dense layers
    ``z_{j+1} = g_j(W^(z)_j z_j + W^(y)_j vec(ybar_L) + b_j)`` on the flattened maps, the last of
    width 1 and linear, whose passthrough reads the full-resolution ``vec(y)`` instead of
    ``ybar_L``; ``f(y) = z_out + (mu/2)||y||^2``. ``W^(z) >= 0`` (conv filters and dense
    weights) is kept by ``constraint``; ``W^(y)``, ``D`` and the biases are free. The passthrough
    ``W^(y)_l`` and the downsampling ``D_l`` of a stage are one fused convolution.

    Args:
        y_shape: ``(C, H, W)`` of the convex input.
        channels: output channels, one entry per conv stage (default: the paper's DQN-like
            ``32@8x8/4, 64@4x4/2, 64@3x3/1``).
        kernel_sizes: kernel size of each conv stage.
        strides: stride of each conv stage.
        dense: widths of the dense hidden layers (may be empty); the width-1 output is appended.
        activation: as :class:`icnn.FICNN`.
        first_activation: as :class:`icnn.FICNN`.
        constraint: as :class:`icnn.FICNN`.
        strong_convexity: as :class:`icnn.FICNN`.
        init: as :class:`icnn.FICNN`.

    Shape:
        Input ``y: (batch, C, H, W)`` -> Output ``(batch,)``.
    """

    def __init__(
        self, y_shape: Sequence[int], channels: Sequence[int] = DEFAULT_CHANNELS,
        kernel_sizes: Sequence[int] = DEFAULT_KERNEL_SIZES,
        strides: Sequence[int] = DEFAULT_STRIDES, dense: Sequence[int] = DEFAULT_DENSE,
        activation: Any = "relu", *, first_activation: Any = None, constraint: str = "softplus",
        strong_convexity: float = 0.0, init: str = "icnn", device=None, dtype=None,
    ) -> None:
        super().__init__()
        y_shape = _check_image_shape("y_shape", y_shape)
        channels, kernel_sizes, strides = _check_geometry(channels, kernel_sizes, strides)
        dense = check_sizes("dense", dense, allow_empty=True)
        hidden_act = make_activation(activation)
        first_act = make_activation(
            first_activation if first_activation is not None else hidden_act, first_layer=True
        )
        self.config = {
            "y_shape": list(y_shape), "channels": list(channels),
            "kernel_sizes": list(kernel_sizes), "strides": list(strides), "dense": list(dense),
            "activation": hidden_act.to_config(), "first_activation": first_act.to_config(),
            "constraint": check_constraint(constraint),
            "strong_convexity": check_strong_convexity(strong_convexity), "init": check_init(init),
        }
        self.convex_input_shape = y_shape
        y_channels = y_shape[0]
        self.stages = conv_stages(y_shape[1:], kernel_sizes, strides)
        self.channels = channels
        factory = {"device": device, "dtype": dtype}
        # stage l: [W^(y)_l | D_l] * ybar_l, biases [b_l | d_l]
        self.y_convs = nn.ModuleList(
            nn.Conv2d(y_channels, c_out + y_channels, **stage.conv_kwargs(), **factory)
            for c_out, stage in zip(channels, self.stages, strict=True)
        )
        self.z_convs = nn.ModuleList(
            NonNegativeConv2d(c_in, c_out, **stage.conv_kwargs(), constraint=constraint,
                              **factory)
            for c_in, c_out, stage in zip(channels[:-1], channels[1:], self.stages[1:],
                                          strict=True)
        )
        last_h, last_w = self.stages[-1].out_size
        self.dense_sizes = (*dense, 1)
        z_widths = (channels[-1] * last_h * last_w, *dense)
        # hidden dense layers read ybar_L; the output layer reads the full-resolution y
        y_widths = [y_channels * last_h * last_w] * len(dense) + [math.prod(y_shape)]
        self.y_dense = nn.ModuleList(
            nn.Linear(n_in, n_out, **factory)
            for n_in, n_out in zip(y_widths, self.dense_sizes, strict=True)
        )
        self.z_dense = nn.ModuleList(
            NonNegativeLinear(n_in, n_out, constraint=constraint, **factory)
            for n_in, n_out in zip(z_widths, self.dense_sizes, strict=True)
        )
        self.activations = _activations(first_act, hidden_act, len(channels) + len(self.dense_sizes))
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Re-draw every parameter with the model's ``init``."""
        if self.config["init"] == "default":
            for layer in (*self.y_convs, *self.y_dense):
                layer.reset_parameters()
            for layer in (*self.z_convs, *self.z_dense):
                redraw_default_nonnegative_(layer)
            return
        y_channels = self.convex_input_shape[0]
        conv_biases = []
        for i, (conv, c_out) in enumerate(zip(self.y_convs, self.channels, strict=True)):
            weights = conv.weight.split((c_out, y_channels))
            biases = conv.bias.split((c_out, y_channels))
            init_free_(weights[0], biases[0], scale=1.0 if i == 0 else math.sqrt(0.5))
            init_free_(weights[1], biases[1])
            conv_biases.append(biases[0])
        for layer in self.y_dense:
            init_free_(layer.weight, layer.bias, scale=math.sqrt(0.5))
        n_conv = len(self.channels)
        for i, layer in enumerate(self.z_convs):
            init_nonnegative_(layer, conv_biases[i + 1], alpha=_slope(self.activations[i]),
                              scale=math.sqrt(0.5))
        for j, layer in enumerate(self.z_dense):
            init_nonnegative_(layer, self.y_dense[j].bias,
                              alpha=_slope(self.activations[n_conv - 1 + j]), scale=math.sqrt(0.5))

    def forward(self, y: Tensor) -> Tensor:
        """``f(y)`` for ``y: (batch, C, H, W)``, ``(batch,)``."""
        self._check_inputs(None, y)
        y_channels = self.convex_input_shape[0]
        y_bar, z = y, None
        for l, stage in enumerate(self.stages):
            skip, y_bar = self.y_convs[l](stage.pad(y_bar)).split(
                (self.channels[l], y_channels), dim=1
            )
            pre = skip if l == 0 else skip + self.z_convs[l - 1](stage.pad(z))
            z = self.activations[l](pre)
        z, y_inputs = z.flatten(1), _dense_y_inputs(y, y_bar, len(self.dense_sizes))
        n_conv = len(self.stages)
        for j, (layer, skip, y_in) in enumerate(zip(self.z_dense, self.y_dense, y_inputs,
                                                    strict=True)):
            z = self.activations[n_conv + j](layer(z) + skip(y_in))
        return z.squeeze(-1) + self.quadratic_term(y)


class ConvPICNN(ConvexModel):
    r"""Partially input convex CNN ``f(x, y)``: convex in the image ``y``, any function of ``x``.

    Equation (3) with convolutions, as the authors' completion network. The x-path is an
    ordinary CNN with the same stage geometry, ``u_{l+1} = g~(V_l * u_l + c_l)``, so ``u_l`` is
    spatially aligned with ``z_l`` (``x`` and ``y`` must have the same ``H, W``; their channels
    are free). Conv stage ``l``:

    .. math::
        z_{l+1} = g_l\Big(W^{(z)}_l * \big(z_l \circ [W^{(zu)}_l \star u_l + b^{(z)}_l]_+\big)
                 + W^{(y)}_l * \big(\bar y_l \circ (W^{(yu)}_l \star u_l + b^{(y)}_l)\big)
                 + W^{(u)}_l * u_l + b_l\Big)

    where ``*`` has the stage's kernel and stride, ``star`` is a 3x3 "same" convolution (the
    gates, with ``z_l``'s and ``y``'s channel counts), ``ybar_0 = y`` and
    ``ybar_{l+1} = D_l * ybar_l + d_l`` (affine in ``y``). The dense head applies eq. (3) to the
    flattened ``z``, ``ybar_L`` and the x-path's dense layers ``u``; in the output layer the y term
    reads the full-resolution ``y``, ``W^(y)(vec(y) o (W^(yu) u + b^(y)))``, so that (as in
    Proposition 2) the network can represent ``phi(x)^T y`` for any feedforward ``phi``. Only
    ``W^(z) >= 0``.

    Args:
        x_shape: ``(C, H, W)`` of the context.
        y_shape: ``(C, H, W)`` of the convex input (same ``H, W`` as ``x_shape``).
        channels: as :class:`ConvFICNN`.
        kernel_sizes: as :class:`ConvFICNN`.
        strides: as :class:`ConvFICNN`.
        dense: as :class:`ConvFICNN`.
        x_channels: widths of the x-path stages; default to ``channels``.
        x_dense: widths of the x-path dense layers; default to ``dense``.
        activation: as :class:`icnn.PICNN`.
        first_activation: as :class:`icnn.PICNN`.
        x_activation: as :class:`icnn.PICNN`.
        constraint: as :class:`icnn.PICNN`.
        strong_convexity: as :class:`icnn.PICNN`.
        init: as :class:`icnn.PICNN`.
        convex: ``False`` is an **ablation** (the paper's "ICNN - Nonconvex" row): the ``W^(z)``
            become ordinary unconstrained ``nn.Conv2d`` / ``nn.Linear`` maps, so the network is
            the same shape but **not convex in y**; ``constraint`` is then unused and
            :attr:`is_convex` is False. Use it only with solvers that do not rely on convexity.

    Shape:
        Input ``x: (batch, *x_shape)``, ``y: (batch, *y_shape)`` -> Output ``(batch,)``.
    """

    def __init__(
        self, x_shape: Sequence[int], y_shape: Sequence[int],
        channels: Sequence[int] = DEFAULT_CHANNELS,
        kernel_sizes: Sequence[int] = DEFAULT_KERNEL_SIZES,
        strides: Sequence[int] = DEFAULT_STRIDES, dense: Sequence[int] = DEFAULT_DENSE,
        x_channels: Sequence[int] | None = None, x_dense: Sequence[int] | None = None,
        activation: Any = "relu", *, first_activation: Any = None, x_activation: str = "relu",
        constraint: str = "softplus", strong_convexity: float = 0.0, init: str = "icnn",
        convex: bool = True, device=None, dtype=None,
    ) -> None:
        super().__init__()
        x_shape = _check_image_shape("x_shape", x_shape)
        y_shape = _check_image_shape("y_shape", y_shape)
        if x_shape[1:] != y_shape[1:]:
            raise ValueError(
                "x and y must have the same spatial size (H, W) so that the x-path is aligned "
                f"with the y-path, got x_shape {x_shape} and y_shape {y_shape}"
            )
        channels, kernel_sizes, strides = _check_geometry(channels, kernel_sizes, strides)
        dense = check_sizes("dense", dense, allow_empty=True)
        x_channels = channels if x_channels is None else check_sizes("x_channels", x_channels)
        x_dense = dense if x_dense is None else check_sizes("x_dense", x_dense, allow_empty=True)
        if len(x_channels) != len(channels) or len(x_dense) != len(dense):
            raise ValueError(
                f"x_channels and x_dense must match channels ({len(channels)} stages) and dense "
                f"({len(dense)} layers) in length, got {list(x_channels)} and {list(x_dense)}"
            )
        if not isinstance(convex, bool):
            raise ValueError(f"convex must be a bool, got {convex!r}")
        hidden_act = make_activation(activation)
        first_act = make_activation(
            first_activation if first_activation is not None else hidden_act, first_layer=True
        )
        self.config = {
            "x_shape": list(x_shape), "y_shape": list(y_shape), "channels": list(channels),
            "kernel_sizes": list(kernel_sizes), "strides": list(strides), "dense": list(dense),
            "x_channels": list(x_channels), "x_dense": list(x_dense),
            "activation": hidden_act.to_config(), "first_activation": first_act.to_config(),
            "x_activation": _check_x_activation(x_activation),
            "constraint": check_constraint(constraint),
            "strong_convexity": check_strong_convexity(strong_convexity), "init": check_init(init),
            "convex": convex,
        }
        self.convex_input_shape = y_shape
        self.context_shape = x_shape
        self.stages = conv_stages(y_shape[1:], kernel_sizes, strides)
        self.channels = channels
        y_channels = y_shape[0]
        factory = {"device": device, "dtype": dtype}
        u_channels = (x_shape[0], *x_channels)
        self.x_convs = nn.ModuleList(
            nn.Conv2d(c_in, c_out, **stage.conv_kwargs(), **factory)
            for c_in, c_out, stage in zip(u_channels[:-1], u_channels[1:], self.stages,
                                          strict=True)
        )
        # stage l gates from u_l: [W^(zu) (l > 0) | W^(yu)], 3x3 same convolutions
        self.gate_split = [((channels[l - 1],) if l > 0 else ()) + (y_channels,)
                           for l in range(len(channels))]
        self.gate_convs = nn.ModuleList(
            nn.Conv2d(u_channels[l], sum(self.gate_split[l]), 3, padding=1, **factory)
            for l in range(len(channels))
        )
        self.u_convs = nn.ModuleList(
            nn.Conv2d(u_channels[l], c_out, **stage.conv_kwargs(), **factory)
            for l, (c_out, stage) in enumerate(zip(channels, self.stages, strict=True))
        )
        self.y_convs = nn.ModuleList(
            nn.Conv2d(y_channels, c_out, **stage.conv_kwargs(), bias=False, **factory)
            for c_out, stage in zip(channels, self.stages, strict=True)
        )
        self.y_down = nn.ModuleList(
            nn.Conv2d(y_channels, y_channels, **stage.conv_kwargs(), **factory)
            for stage in self.stages
        )
        self.z_convs = nn.ModuleList(
            _z_conv(c_in, c_out, stage, convex, constraint, factory)
            for c_in, c_out, stage in zip(channels[:-1], channels[1:], self.stages[1:],
                                          strict=True)
        )
        last_h, last_w = self.stages[-1].out_size
        n_pixels = last_h * last_w
        self.dense_sizes = (*dense, 1)
        z_widths = (channels[-1] * n_pixels, *dense)
        ud_widths = (x_channels[-1] * n_pixels, *x_dense)
        # hidden dense layers read ybar_L; the output layer reads the full-resolution y
        y_widths = [y_channels * n_pixels] * len(dense) + [math.prod(y_shape)]
        self.x_dense = nn.ModuleList(
            nn.Linear(n_in, n_out, **factory)
            for n_in, n_out in zip(ud_widths[:-1], ud_widths[1:], strict=True)
        )
        # dense layer j from u_j: [W^(zu) | W^(yu) | W^(u)] with biases [b^(z) | b^(y) | b]
        self.dense_split = [(z_widths[j], y_widths[j], n_out)
                            for j, n_out in enumerate(self.dense_sizes)]
        self.u_dense = nn.ModuleList(
            nn.Linear(ud_widths[j], sum(self.dense_split[j]), **factory)
            for j in range(len(self.dense_sizes))
        )
        self.y_dense = nn.ModuleList(
            nn.Linear(n_in, n_out, bias=False, **factory)
            for n_in, n_out in zip(y_widths, self.dense_sizes, strict=True)
        )
        self.z_dense = nn.ModuleList(
            _z_linear(n_in, n_out, convex, constraint, factory)
            for n_in, n_out in zip(z_widths, self.dense_sizes, strict=True)
        )
        self.activations = _activations(first_act, hidden_act, len(channels) + len(self.dense_sizes))
        self.reset_parameters()

    @property
    def is_convex(self) -> bool:
        """False for the ``convex=False`` ablation, whose ``W^(z)`` are unconstrained."""
        return bool(self.config["convex"])

    def structural_issues(self) -> list[str]:
        """As :meth:`ConvexModel.structural_issues`, plus the ``convex=False`` ablation."""
        issues = super().structural_issues()
        if not self.is_convex:
            issues.insert(0, "ConvPICNN was built with convex=False (the non-convex ablation): "
                             "its z-maps are unconstrained")
        return issues

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Re-draw every parameter with the model's ``init``."""
        default = self.config["init"] == "default"
        free = (*self.x_convs, *self.gate_convs, *self.u_convs, *self.y_convs, *self.y_down,
                *self.x_dense, *self.u_dense, *self.y_dense)
        for layer in free:
            if default:
                layer.reset_parameters()
            else:
                init_free_(layer.weight, layer.bias)
        if not default:
            for gate in self.gate_convs:
                gate.weight.mul_(0.1)  # gates start near 1: y and z pass through, as in Prop. 2
                gate.bias.fill_(1.0)
            for j, u_map in enumerate(self.u_dense):
                for part in (0, 1):
                    u_map.weight.split(self.dense_split[j])[part].mul_(0.1)
                    u_map.bias.split(self.dense_split[j])[part].fill_(1.0)
            for l, layer in enumerate(self.y_convs):
                layer.weight.mul_(1.0 if l == 0 else math.sqrt(0.5))
            for layer in self.y_dense:
                layer.weight.mul_(math.sqrt(0.5))
        n_conv = len(self.channels)
        z_maps = [(layer, self.u_convs[i + 1].bias, self.activations[i])
                  for i, layer in enumerate(self.z_convs)]
        z_maps += [(layer, self.u_dense[j].bias.split(self.dense_split[j])[-1],
                    self.activations[n_conv - 1 + j]) for j, layer in enumerate(self.z_dense)]
        for layer, bias, activation in z_maps:
            if not self.is_convex:
                if default:
                    layer.reset_parameters()
                else:
                    init_free_(layer.weight, None, scale=math.sqrt(0.5))
            elif default:
                redraw_default_nonnegative_(layer)
            else:
                init_nonnegative_(layer, bias, alpha=_slope(activation), scale=math.sqrt(0.5))

    def context_path(self, x: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        """The x-path: conv features ``[u_0 = x, ..., u_L]`` and dense inputs ``[vec(u_L), ...]``."""
        act = _X_ACTIVATIONS[self.config["x_activation"]]
        u = [x]
        for stage, conv in zip(self.stages, self.x_convs, strict=True):
            u.append(act(conv(stage.pad(u[-1]))))
        u_dense = [u[-1].flatten(1)]
        for layer in self.x_dense:
            u_dense.append(act(layer(u_dense[-1])))
        return u, u_dense

    @property
    def context_feature_shapes(self) -> list[tuple[int, ...]]:
        """Per-example shapes of the pieces of :meth:`context_features`, in order."""
        shapes: list[tuple[int, ...]] = []
        for l, stage in enumerate(self.stages):
            shapes.append((sum(self.gate_split[l]), *stage.in_size))
            shapes.append((self.channels[l], *stage.out_size))
        shapes += [(sum(split),) for split in self.dense_split]
        return shapes

    @property
    def n_context_features(self) -> int:
        """Size of the packed context features (see :meth:`context_features`)."""
        return sum(math.prod(shape) for shape in self.context_feature_shapes)

    def context_features(self, x: Tensor) -> Tensor:
        """Everything the y-path needs from ``x``, packed: ``(batch, n_context_features)``.

        Per conv stage the gates ``[W^(zu) | W^(yu)] star u_l + b`` and the term
        ``W^(u) * u_l + b_l``, then per dense layer ``[W^(zu) | W^(yu) | W^(u)] u_j + b``. An
        inference loop that evaluates ``f(x, .)`` many times computes this once and calls
        :meth:`energy_from_features`; ``forward(x, y)`` is exactly the composition of the two.
        """
        u, u_dense = self.context_path(x)
        pieces = []
        for l, stage in enumerate(self.stages):
            pieces.append(self.gate_convs[l](u[l]))
            pieces.append(self.u_convs[l](stage.pad(u[l])))
        pieces += [layer(u_j) for layer, u_j in zip(self.u_dense, u_dense, strict=True)]
        return torch.cat([piece.flatten(1) for piece in pieces], dim=1)

    def energy_from_features(self, features: Tensor, y: Tensor) -> Tensor:
        """``f(x, y)`` from ``features = context_features(x)``: ``(batch, n)``, ``y`` -> ``(batch,)``.

        Not validated (call :meth:`forward` for checked inputs).
        """
        shapes = self.context_feature_shapes
        pieces = [piece.reshape(-1, *shape) for piece, shape in zip(
            features.split([math.prod(s) for s in shapes], dim=1), shapes, strict=True)]
        n_conv = len(self.stages)
        y_bar, z = y, None
        for l, stage in enumerate(self.stages):
            gates = pieces[2 * l].split(self.gate_split[l], dim=1)
            pre = self.y_convs[l](stage.pad(y_bar * gates[-1])) + pieces[2 * l + 1]
            if l > 0:
                pre = pre + self.z_convs[l - 1](stage.pad(z * F.relu(gates[0])))
            z = self.activations[l](pre)
            y_bar = self.y_down[l](stage.pad(y_bar))
        z, y_inputs = z.flatten(1), _dense_y_inputs(y, y_bar, len(self.dense_sizes))
        for j, (piece, y_in) in enumerate(zip(pieces[2 * n_conv:], y_inputs, strict=True)):
            z_gate, y_gate, u_term = piece.split(self.dense_split[j], dim=-1)
            pre = (self.z_dense[j](z * F.relu(z_gate)) + self.y_dense[j](y_in * y_gate)
                   + u_term)
            z = self.activations[n_conv + j](pre)
        return z.squeeze(-1) + self.quadratic_term(y)

    def condition(self, x: Tensor) -> Callable[[Tensor, Tensor | None], Tensor]:
        """``energy(y, index=None) = f(x[index], y)`` with the x-path evaluated once, now.

        The hook :func:`icnn.argmin` looks for: solvers evaluate ``f(x, .)`` at many ``y`` and
        skip the x-path after the first call. Gradients reach the weights through both the
        features (if computed with grad enabled) and the y-path.
        """
        features = self.context_features(x)

        def energy(y: Tensor, index: Tensor | None = None) -> Tensor:
            return self.energy_from_features(features if index is None else features[index], y)

        return energy

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """``f(x, y)`` for ``x: (batch, *x_shape)``, ``y: (batch, *y_shape)``, ``(batch,)``."""
        self._check_inputs(x, y)
        return self.energy_from_features(self.context_features(x), y)


def _dense_y_inputs(y: Tensor, y_bar: Tensor, n_layers: int) -> list[Tensor]:
    """What each dense layer's y term reads: ``vec(ybar_L)``, ..., and ``vec(y)`` for the output."""
    return [y_bar.flatten(1)] * (n_layers - 1) + [y.flatten(1)]


def _z_conv(c_in: int, c_out: int, stage: ConvStage, convex: bool, constraint: str,
            factory: dict[str, Any]) -> nn.Conv2d:
    if convex:
        return NonNegativeConv2d(c_in, c_out, **stage.conv_kwargs(), constraint=constraint,
                                 **factory)
    return nn.Conv2d(c_in, c_out, **stage.conv_kwargs(), bias=False, **factory)


def _z_linear(n_in: int, n_out: int, convex: bool, constraint: str,
              factory: dict[str, Any]) -> nn.Linear:
    if convex:
        return NonNegativeLinear(n_in, n_out, constraint=constraint, **factory)
    return nn.Linear(n_in, n_out, bias=False, **factory)
