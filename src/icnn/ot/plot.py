"""The D = 2 picture: source and target samples, the pushed samples and the map's arrows."""

from __future__ import annotations

import os
from pathlib import Path

from torch import Tensor

from ..checkpoint import atomic_write

__all__ = ["plot_transport_2d"]


def plot_transport_2d(source: Tensor, target: Tensor, pushed: Tensor, path: str | os.PathLike, *,
                      arrows: int = 128, title: str = "") -> Path:
    """Draw the source, the target and the pushed-forward source in 2-D.

    Draw ``source``, ``target`` and ``pushed = T(source)`` (each ``(n, 2)``) and arrows from
    the first ``arrows`` source points to their images; write a PNG atomically.

    Raises:
        ValueError: points that are not 2-D or pushed points that do not match the source.
        ImportError: matplotlib is missing (``pip install 'icnn-torch[plot]'``).
    """
    if source.ndim != 2 or source.shape[1] != 2 or target.ndim != 2 or target.shape[1] != 2:
        raise ValueError(f"expected (n, 2) points for the picture, got {tuple(source.shape)} and "
                         f"{tuple(target.shape)}")
    if pushed.shape != source.shape:
        raise ValueError(f"expected pushed points of shape {tuple(source.shape)}, got {tuple(pushed.shape)}")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s, t, p = (a.detach().double().cpu().numpy() for a in (source, target, pushed))
    fig, axes = plt.subplots(1, 2, figsize=(10, 5), sharex=True, sharey=True)
    axes[0].scatter(s[:, 0], s[:, 1], s=2, alpha=0.4, label="source P")
    axes[0].scatter(t[:, 0], t[:, 1], s=2, alpha=0.4, label="target Q")
    axes[0].set_title("samples")
    axes[1].scatter(t[:, 0], t[:, 1], s=2, alpha=0.3, color="tab:orange", label="target Q")
    axes[1].scatter(p[:, 0], p[:, 1], s=2, alpha=0.3, color="tab:green", label="pushed T(x)")
    k = min(arrows, s.shape[0])
    axes[1].quiver(s[:k, 0], s[:k, 1], p[:k, 0] - s[:k, 0], p[:k, 1] - s[:k, 1], angles="xy",
                   scale_units="xy", scale=1.0, width=0.002, alpha=0.6)
    axes[1].set_title("pushed samples and the map's arrows")
    for ax in axes:
        ax.legend(loc="upper right", markerscale=4)
        ax.set_aspect("equal")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    finally:
        plt.close(fig)
