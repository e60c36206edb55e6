"""``completions.png``: observed part, truth and each method's completion, side by side."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from torch import Tensor


def save_completions_figure(
    path: str | Path, observed: Tensor, truth: Tensor, completions: Mapping[str, Tensor],
    *, mse: Mapping[str, float] | None = None, title: str | None = None,
) -> Path:
    """One column per face; rows: observed (missing pixels grey), truth, each method.

    Args:
        path: PNG file to write (parent folders are created).
        observed: ``(n, H, W)`` images in ``[0, 1]``, the observed part.
        truth: ``(n, H, W)`` images in ``[0, 1]``, the full images.
        completions: method name -> ``(n, H, W)`` completed images.
        mse: method name -> test MSE, printed beside the row label.
        title: figure title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [("observed", observed), ("truth", truth), *completions.items()]
    n = observed.shape[0]
    fig, axes = plt.subplots(len(rows), n, figsize=(1.1 * n + 1.2, 1.2 * len(rows) + 0.4),
                             squeeze=False)
    for r, (name, images) in enumerate(rows):
        for c in range(n):
            ax = axes[r, c]
            ax.imshow(images[c].detach().cpu().numpy(), cmap="gray", vmin=0.0, vmax=1.0,
                      interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        label = name if mse is None or name not in mse else f"{name}\nMSE {mse[name]:.0f}"
        axes[r, 0].set_ylabel(label, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
