"""Weight decay that shrinks the constrained weights ``W^(z)`` toward zero, not toward a constant.

An optimiser's ``weight_decay`` shrinks the tensors it is given. A weight kept non-negative by a
parametrisation (``W = softplus(V)`` or ``W = exp(V)``, see :mod:`icnn.nn.constraints`) is
trained through its raw tensor ``V``. Decay on ``V`` pulls ``V`` to 0, so ``W`` goes to
``softplus(0) = log 2`` (or ``exp(0) = 1``): after enough steps every entry of ``W^(z)`` sits at
the same positive constant, and the layer forgets what it learned. An L2 penalty is meant to
pull ``W`` toward 0.

:func:`decay_groups` builds optimiser parameter groups that keep the raw tensors out of the
optimiser's decay. :func:`constrained_weight_penalty` is ``½ Σ ‖W‖²`` over the effective
constrained weights. Add ``weight_decay * penalty`` to the loss: its gradient with respect to
``W`` is ``weight_decay * W``, the same L2 decay that ``Adam(weight_decay=...)`` applies to
plain weights. Projected weights (``constraint="project"``) are plain parameters, and so are
all other weights; the optimiser's own decay stays correct for them.

    groups = decay_groups(model, weight_decay)          # raw V: no optimiser decay
    optimizer = torch.optim.Adam(groups, lr=1e-3)
    loss = task_loss + weight_decay * constrained_weight_penalty(model)
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize


def _parametrized(module: nn.Module) -> list[tuple[nn.Module, str]]:
    """``(submodule, name)`` of every parametrised tensor in ``module``."""
    return [
        (sub, name)
        for sub in module.modules()
        if parametrize.is_parametrized(sub)
        for name in sub.parametrizations
    ]


def raw_constrained_parameters(module: nn.Module) -> list[nn.Parameter]:
    """The raw tensors ``V`` behind the parametrised weights of ``module`` (possibly none)."""
    return [sub.parametrizations[name].original for sub, name in _parametrized(module)]


def decay_groups(
    module: nn.Module, weight_decay: float, parameters: Iterable[nn.Parameter] | None = None
) -> list[dict]:
    """Optimiser parameter groups: decay ``weight_decay`` for plain tensors, 0 for raw ``V``.

    Args:
        module: the model whose parametrised weights are found.
        weight_decay: the decay of every other parameter.
        parameters: the parameters to optimise (default: ``module.parameters()``).

    Returns:
        One or two groups (an empty group is left out), ready for any ``torch.optim`` optimiser.
    """
    params = list(module.parameters() if parameters is None else parameters)
    raw = {id(p) for p in raw_constrained_parameters(module)}
    plain = [p for p in params if id(p) not in raw]
    constrained = [p for p in params if id(p) in raw]
    groups = [{"params": plain, "weight_decay": weight_decay},
              {"params": constrained, "weight_decay": 0.0}]
    return [group for group in groups if group["params"]]


def constrained_weight_penalty(module: nn.Module) -> Tensor:
    """``½ Σ ‖W‖²`` over the effective parametrised weights of ``module`` (a scalar tensor).

    Differentiable with respect to the raw tensors; zero (a plain 0-d tensor) when the module
    has no parametrised weight.
    """
    terms = [getattr(sub, name).square().sum() for sub, name in _parametrized(module)]
    if not terms:
        reference = next(module.parameters(), None)
        if reference is None:
            return torch.zeros(())
        return torch.zeros((), dtype=reference.dtype, device=reference.device)
    return 0.5 * torch.stack(terms).sum()
