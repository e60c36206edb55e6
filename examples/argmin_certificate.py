"""Argmin over a box, with a coordinate held fixed: the answer, its certificate and its gap.

A ReLU FICNN is piecewise linear and convex, so the bundle method (paper Section 4.3) returns,
besides ``y``, a certified lower bound on the minimum: ``gap = value - lower_bound`` bounds how
far ``y`` can be from optimal. We check it against the exact LP (HiGHS), with and without
``fixed=(mask, values)``, which pins ``y_1 = 0.5`` and optimises the other coordinate only.
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

# a ReLU FICNN fitted to ||y - c||^2, whose minimum c lies outside the box [-1, 1]^2
centre = torch.tensor([0.8, -1.6])
model = icnn.FICNN(2, hidden=[32, 32], activation="relu")
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
for _ in range(100 if FAST else 800):
    y = 5 * torch.rand(512, 2) - 2.5
    loss = (model(y) - (y - centre).square().sum(1)).square().mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()

box = icnn.Box(-1.0, 1.0)
pin = (torch.tensor([True, False]), torch.tensor([0.5, 0.0]))  # y_1 = 0.5, y_2 free
answers = {}
for name, fixed in [("box", None), ("box, y1 = 0.5", pin)]:
    bundle = icnn.argmin(model, domain=box, fixed=fixed, method="bundle", tol=1e-4, max_iter=500)
    exact = icnn.argmin(model, domain=box, fixed=fixed, method="exact")
    value, lower, best = float(bundle.value), float(bundle.lower_bound), float(exact.value)
    print(f"{name:>14}: y = {bundle.y.squeeze().tolist()}, f = {value:.5f}, certified gap "
          f"{float(bundle.gap):.2e}, converged {bool(bundle.converged)}; exact LP f = {best:.5f}")
    assert bool(bundle.converged) and float(bundle.gap) <= 1e-4 * max(1.0, abs(value)) + 1e-12
    assert lower <= best + 1e-6 and best <= value + 1e-6, "the certificate brackets the LP optimum"
    assert box.lo <= bundle.y.min() and bundle.y.max() <= box.hi
    answers[name] = (bundle.y.squeeze(), float(bundle.gap))
assert float(answers["box, y1 = 0.5"][0][0]) == 0.5, "a fixed coordinate keeps its value exactly"

grid = torch.linspace(-2.5, 2.5, 151)
g1, g2 = torch.meshgrid(grid, grid, indexing="xy")
with torch.no_grad():
    surface = model(torch.stack([g1.reshape(-1), g2.reshape(-1)], 1)).reshape(g1.shape)
fig, ax = plt.subplots(figsize=(5.6, 5))
ax.contour(g1, g2, surface, levels=20, cmap="viridis", linewidths=0.8)
ax.add_patch(plt.Rectangle((-1, -1), 2, 2, fill=False, lw=2, color="black", label="Box(-1, 1)"))
ax.axvline(0.5, color="tab:orange", ls="--", label="fixed $y_1 = 0.5$")
ax.plot(*centre, "k+", ms=12, label="unconstrained minimum")
for (name, (y, gap)), marker in zip(answers.items(), ["o", "s"], strict=True):
    ax.plot(*y.tolist(), marker, ms=9, label=f"argmin ({name}), gap {gap:.1e}")
ax.set_xlabel("$y_1$")
ax.set_ylabel("$y_2$")
ax.set_aspect("equal")
ax.legend(loc="upper left", fontsize=8)
ax.set_title("Certified argmin of a ReLU FICNN")
fig.tight_layout()
OUT.mkdir(parents=True, exist_ok=True)
fig.savefig(OUT / "argmin_certificate.png", dpi=110)
print(f"wrote {OUT / 'argmin_certificate.png'}")
