"""Label scores in ``[0, 1]^L``: a sigmoid for the baseline, ``argmin_y f(x, y)`` for the PICNN."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .models import FeedForward, feedforward_scores


def picnn_prediction(model: nn.Module, x: Tensor, *, solver: str, iterations: int,
                     differentiable: str | None = None) -> Tensor:
    """``y_hat = argmin_{y in [0, 1]^L} f(x, y)`` by :func:`icnn.argmin`, ``(batch, L)``.

    With ``solver="bundle_entropy"`` the minimised objective is ``f - H`` (paper Section 4.4),
    so the prediction is soft and a threshold turns it into labels. ``differentiable``
    (``"implicit"`` or ``"unroll"``) keeps ``y_hat`` in the graph for argmin training.
    """
    import icnn

    unrolled = differentiable == "unroll"
    result = icnn.argmin(model, x, domain=icnn.Box(0.0, 1.0),
                         method="pgd" if unrolled else solver, max_iter=iterations,
                         differentiable=differentiable)
    return result.y


def label_scores(model: nn.Module, x: Tensor, *, solver: str = "bundle_entropy",
                 iterations: int = 10, batch_size: int = 512) -> Tensor:
    """Scores ``(N, L)`` in ``[0, 1]`` of either model, in eval mode, batch by batch.

    Args:
        model: :class:`FeedForward` (scores ``sigmoid(logits)``) or an energy convex in ``y``
            (scores ``argmin_y f(x, y)`` over ``[0, 1]^L`` by ``solver``).
        x: ``(N, D)`` features.
        solver: the :func:`icnn.argmin` method.
        iterations: its ``max_iter``.
        batch_size: examples per call.
    """
    if isinstance(model, FeedForward):
        return feedforward_scores(model, x, batch_size)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        scores = torch.cat([picnn_prediction(model, chunk, solver=solver, iterations=iterations)
                            for chunk in x.split(batch_size)])
    model.train(was_training)
    return scores.clamp(0.0, 1.0)
