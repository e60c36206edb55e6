"""How far a fitted MM/W2GN ``g`` is from the conjugate of ``f``, on training samples only.

Prints, on the first 2048 training pairs (float64): ``E f(x)``, ``E[<y, ∇g(y)> - f(∇g(y))]`` (what
the W2GN/MM objective uses for ``f*``), ``E f*(y)`` from ``icnn.conjugate`` warm-started at ``∇g(y)``
(tol 1e-6, 500 iterations) with the share of converged rows, and the two implied W2² values
``E|x|² + E|y|² - 2 (E f + E f*)``. No true map is used.

Run: ``python experiments/results/ot/conjugate_gap.py RUN_DIR BENCHMARK``.
"""
import sys
from pathlib import Path

sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import torch  # noqa: E402

import icnn  # noqa: E402
from icnn.ot.checkpoint import load_transport  # noqa: E402
from icnn.ot.problems import make_problem  # noqa: E402

torch.set_num_threads(1)
run, bench = sys.argv[1], sys.argv[2]
model, _, _ = load_transport(run + "/transport.safetensors")
x, y, _ = make_problem(bench, 16384, 0)
x, y = x[:2048].double(), y[:2048].double()
model = model.double()
with torch.no_grad():
    fx = model.potential(x).mean()
pulled = model.inverse_predict(y).detach()
with torch.no_grad():
    lower = ((y * pulled).sum(1) - model.potential(pulled)).mean()
res = icnn.conjugate(model.f, y, y0=pulled, tol=1e-6, max_iter=500, unconverged="keep")
exact = res.value.detach().mean()
m2 = (x.square().sum(1).mean() + y.square().sum(1).mean())
print(bench, "E f(x)", float(fx), "E[<y,g>-f(g)]", float(lower), "E f*(y)", float(exact),
      "converged", float(res.converged.double().mean()),
      "dual W2^2 with g", float(m2 - 2 * (fx + lower)),
      "dual W2^2 with f*", float(m2 - 2 * (fx + exact)))
