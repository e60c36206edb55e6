"""Cost and accuracy of each argmin method on one problem (a batch of PICNN energies).

Every method solves ``min_{y in [0,1]^30} f(x, y)`` for the same 64 contexts; the exact LP
(HiGHS, one example at a time) is the reference. ``bundle_entropy`` minimises ``f - H`` (the
paper's entropy-smoothed problem), so its distance to ``min f`` is not an error but a choice.
"""

import os
import time
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

batch = 8 if FAST else 64
model = icnn.PICNN(x_dim=20, y_dim=30, hidden=[64, 64], activation="relu").double()
x = torch.randn(batch, 20, dtype=torch.float64)
box = icnn.Box(0.0, 1.0)

rows = {}
for method in ["exact", "bundle", "lbfgs", "pgd", "bundle_entropy"]:
    start = time.perf_counter()
    result = icnn.argmin(model, x, domain=box, method=method, tol=1e-4)
    seconds = time.perf_counter() - start
    rows[method] = (seconds, result.value, result.converged.float().mean().item(), result.iterations)
best = rows["exact"][1]
scale = best.abs().clamp_min(1.0)
print(f"{'method':>15} {'time (s)':>9} {'iters':>6} {'converged':>9} {'mean rel. subopt.':>18}")
for method, (seconds, value, converged, iterations) in rows.items():
    subopt = ((value - best) / scale).clamp_min(0)
    rows[method] = (seconds, float(subopt.mean()), converged)
    print(f"{method:>15} {seconds:9.3f} {iterations:6d} {converged:9.0%} {float(subopt.mean()):18.2e}")
    assert bool((value >= best - 1e-6 * scale).all()), f"{method} went below the LP optimum"
for method in ["bundle", "lbfgs", "pgd"]:
    assert rows[method][1] < 1e-2, f"{method} is far from the optimum"

fig, ax = plt.subplots(figsize=(6, 4))
for method, (seconds, subopt, converged) in rows.items():
    shown = max(subopt, 1e-9)
    ax.scatter(seconds, shown, s=60)
    ax.annotate(f"{method} ({converged:.0%} conv.)", (seconds, shown), textcoords="offset points",
                xytext=(6, 4), fontsize=8)
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel(f"wall time for {batch} examples (s, 1 thread)")
ax.set_ylabel("mean relative suboptimality vs exact LP\n(exact: plotted at 1e-9)")
ax.set_title("argmin methods on one PICNN problem")
fig.tight_layout()
OUT.mkdir(parents=True, exist_ok=True)
fig.savefig(OUT / "solver_comparison.png", dpi=110)
print(f"wrote {OUT / 'solver_comparison.png'}")
