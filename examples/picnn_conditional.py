"""A PICNN as a conditional model: any function of the context ``x``, convex in ``y``.

We fit ``f(x, y)`` to the energy ``(y - m(x))^2`` of a wiggly conditional mean ``m``. Each slice
``y -> f(x, y)`` is convex (an FICNN whose weights depend on ``x``, paper eq. 3), while the
dependence on ``x`` is free, so ``y*(x) = argmin_y f(x, y)`` can follow a non-monotone ``m(x)``.
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


def mean(x: torch.Tensor) -> torch.Tensor:
    """The conditional mean ``m(x) = sin(2x) + 0.3x``, ``(n, 1) -> (n, 1)``."""
    return torch.sin(2 * x) + 0.3 * x


model = icnn.PICNN(x_dim=1, y_dim=1, hidden=[64, 64], activation="softplus")
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
for _ in range(200 if FAST else 2000):
    x, y = 4 * torch.rand(512, 1) - 2, 6 * torch.rand(512, 1) - 3
    loss = (model(x, y) - (y - mean(x)).square().squeeze(1)).square().mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()

x_grid = torch.linspace(-2, 2, 81).unsqueeze(1)
result = icnn.argmin(model, x_grid, domain=icnn.Box(-3.0, 3.0), method="lbfgs")
error = (result.y - mean(x_grid)).abs()
print(f"argmin y*(x) vs m(x): max error {float(error.max()):.3f}, mean {float(error.mean()):.3f}; "
      f"converged {float(result.converged.float().mean()):.0%}")
report = icnn.check_convexity(model, x_grid, n_pairs=len(x_grid))
print(report)
assert report.ok, "a PICNN is convex in y for every context"
assert float(error.max()) < (1.0 if FAST else 0.15), "the argmin does not follow m(x)"

y_grid = torch.linspace(-3, 3, 121)
gx, gy = torch.meshgrid(x_grid.squeeze(1), y_grid, indexing="xy")
with torch.no_grad():
    energy = model(gx.reshape(-1, 1), gy.reshape(-1, 1)).reshape(gx.shape)
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
left.contourf(gx, gy, energy.clamp(max=4), levels=30, cmap="viridis")
left.plot(x_grid, mean(x_grid), "w--", lw=2, label="true m(x)")
left.plot(x_grid, result.y, "r", lw=1.5, label="argmin$_y$ f(x, y)")
left.set_xlabel("context x")
left.set_ylabel("y")
left.legend(fontsize=8)
left.set_title("energy f(x, y) (clipped at 4)")
for value in [-1.5, -0.5, 0.5, 1.5]:
    with torch.no_grad():
        slice_ = model(torch.full((121, 1), value), y_grid.unsqueeze(1))
    right.plot(y_grid, slice_, label=f"x = {value}")
right.set_xlabel("y")
right.set_title("slices y -> f(x, y): each convex")
right.legend(fontsize=8)
fig.tight_layout()
OUT.mkdir(parents=True, exist_ok=True)
fig.savefig(OUT / "picnn_conditional.png", dpi=110)
print(f"wrote {OUT / 'picnn_conditional.png'}")
