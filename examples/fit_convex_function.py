"""Fit a convex function with an FICNN and look at its level sets.

An FICNN ``f(y)`` is convex in ``y`` by construction (Proposition 1): every sublevel set
``{y : f(y) <= c}`` is convex, whatever the weights. We regress a convex target in 2-D,
check convexity (structure + sampled Jensen inequality), and draw target and fit side by side.
Run: ``python examples/fit_convex_function.py`` (writes ``build/gallery/fit_convex_function.png``).
"""

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

import icnn
from icnn.learn import seed_everything

FAST = os.environ.get("ICNN_GALLERY_FAST") == "1"
OUT = Path(os.environ.get("ICNN_GALLERY_OUT", "build/gallery"))
torch.set_num_threads(1)
seed_everything(0)


def target(y: torch.Tensor) -> torch.Tensor:
    """A convex target: a log-sum-exp of four planes plus a tilted quadratic, ``(n, 2) -> (n,)``."""
    planes = torch.tensor([[2.0, 0.5], [-1.5, 1.0], [0.3, -2.0], [-0.5, -0.5]])
    return torch.logsumexp(y @ planes.T, dim=1) + 0.3 * (y[:, 0] - 0.5 * y[:, 1]).square()


y_train = 4 * torch.rand(2048, 2) - 2
t_train = target(y_train)
model = icnn.FICNN(2, hidden=[64, 64], activation="softplus")
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
steps = 150 if FAST else 1500
for _ in range(steps):
    loss = (model(y_train) - t_train).square().mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()

y_test = 4 * torch.rand(1024, 2) - 2
with torch.no_grad():
    test_mse = float((model(y_test) - target(y_test)).square().mean())
relative = test_mse / float(target(y_test).var())
report = icnn.check_convexity(model)
print(f"test MSE {test_mse:.4f} ({relative:.2%} of the target's variance)")
print(report)
assert report.ok, "an FICNN is convex whatever its weights"
assert relative < (0.2 if FAST else 0.01), f"fit too poor: {relative:.3f}"

grid = torch.linspace(-2, 2, 121)
g1, g2 = torch.meshgrid(grid, grid, indexing="xy")
points = torch.stack([g1.reshape(-1), g2.reshape(-1)], dim=1)
with torch.no_grad():
    surfaces = [target(points).reshape(g1.shape), model(points).reshape(g1.shape)]
levels = torch.linspace(float(surfaces[0].min()), float(surfaces[0].max()), 14).tolist()
fig, axes = plt.subplots(1, 2, figsize=(9, 4.2), sharey=True)
for ax, surface, title in zip(axes, surfaces, ["convex target", f"FICNN fit ({steps} Adam steps)"],
                              strict=True):
    contour = ax.contour(g1, g2, surface, levels=levels, cmap="viridis")
    ax.clabel(contour, fontsize=7, fmt="%.1f")
    ax.set_title(title)
    ax.set_xlabel("$y_1$")
    ax.set_aspect("equal")
axes[0].set_ylabel("$y_2$")
fig.suptitle("Every sublevel set of an FICNN is convex")
fig.tight_layout()
OUT.mkdir(parents=True, exist_ok=True)
fig.savefig(OUT / "fit_convex_function.png", dpi=110)
print(f"wrote {OUT / 'fit_convex_function.png'}")
