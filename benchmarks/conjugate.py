"""Speed and accuracy of ``icnn.conjugate`` against the two ways people compute conjugates.

The potential: a DenseICNN-like :class:`icnn.FICNN` on ``D = 64`` (hidden 128-128-128, CELU,
``quadratic_rank=1``), initialised by :func:`icnn.potentials.gaussian_map_init` to the Gaussian
OT map between ``N(0, I)`` and a random Gaussian, with the network at full scale
(``network_scale=1``: the map is the Gaussian map plus the random network's gradient), float32.
The dual points: ``z = grad f(y)`` for ``y ~ N(0, I)`` (the inverse map the conjugate
computes), batch 4096. Every method starts from ``y0 = z`` and must bring every example's
relative residual ``||grad f(y) - z|| / max(1, ||z||)`` to ``<= 1e-4``; the residuals are
re-measured here with :func:`icnn.gradient_map` after each method, not taken from it.

Methods, measured in the same run, one thread:

- ``icnn.conjugate`` (per-example L-BFGS through ``icnn.argmin``, residual-checked rounds);
- ``torch.optim.LBFGS`` on the summed batch (CP-Flow's way: one L-BFGS over the ``B x D``
  variables of ``sum_i f(y_i) - <y_i, z_i>``, strong-Wolfe line search, memory 10), stopped
  when every example's residual is ``<= 1e-4`` (checked every ``--check-every`` iterations,
  the checks untimed), or at ``--torch-max-iter`` iterations or ``--torch-max-seconds``
  (then the speed-up is printed as a lower bound: the baseline had not reached the residual);
- scipy ``L-BFGS-B`` per example (float64 NumPy around the float32 model, ``gtol = 1e-4
  max(1, ||z||) / sqrt(D)``, which implies the residual), on ``--scipy-subset`` examples, its time
  extrapolated linearly to the batch and labelled so.

Run: ``python benchmarks/conjugate.py [--threads 1] [--batch 4096] [--dim 64] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time

import numpy as np
import torch

import icnn
from icnn.potentials import gaussian_map_init, gradient_map

TOL = 1e-4


def build_potential(dim: int, seed: int) -> icnn.FICNN:
    torch.manual_seed(seed)
    width = max(2 * dim, 64)
    model = icnn.FICNN(dim, hidden=(width, width, width), activation="celu", quadratic_rank=1)
    root = torch.randn(dim, dim) / math.sqrt(dim) + torch.eye(dim)
    source = torch.randn(8 * dim, dim)
    target = torch.randn(8 * dim, dim) @ root.T + torch.randn(dim)
    gaussian_map_init(model, source, target, network_scale=1.0)
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model


def residual(model: icnn.FICNN, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        grad = gradient_map(model)(y)
    return (grad - z).norm(dim=1) / z.norm(dim=1).clamp_min(1.0)


def run_icnn(model, z, max_iter):
    start = time.perf_counter()
    result = icnn.conjugate(model, z, tol=TOL, max_iter=max_iter)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "iterations": result.iterations,
            "evaluations_median": float(result.evaluations.double().median()),
            "evaluations_max": int(result.evaluations.max()),
            "converged_reported": float(result.converged.double().mean()),
            "residual": residual(model, result.y, z)}


def run_torch_lbfgs(model, z, max_iter, check_every, max_seconds):
    y = z.clone().requires_grad_(True)
    optimiser = torch.optim.LBFGS([y], lr=1.0, max_iter=check_every, history_size=10,
                                  line_search_fn="strong_wolfe", tolerance_grad=0.0,
                                  tolerance_change=0.0)

    def closure():
        optimiser.zero_grad()
        loss = (model(y) - (y * z).sum(-1)).sum()
        loss.backward()
        return loss

    seconds, iterations = 0.0, 0
    res = residual(model, y.detach(), z)
    while iterations < max_iter and seconds < max_seconds and float(res.max()) > TOL:
        start = time.perf_counter()
        optimiser.step(closure)
        seconds += time.perf_counter() - start
        state = optimiser.state[optimiser._params[0]]
        iterations = int(state["n_iter"])
        res = residual(model, y.detach(), z)
        if not bool(torch.isfinite(res).all()):
            break
    state = optimiser.state[optimiser._params[0]]
    return {"seconds": seconds, "iterations": iterations,
            "evaluations": int(state["func_evals"]), "residual": res}


def run_scipy(model, z, subset):
    from scipy.optimize import minimize

    dim = z.shape[1]
    rows = z[:subset]
    found = []
    evaluations = []
    start = time.perf_counter()
    for z_i in rows:
        z_np = z_i.double().numpy()

        def fun(y_np, z_i=z_i, z_np=z_np):
            y = torch.tensor(y_np, dtype=torch.float32)[None].requires_grad_(True)
            value = model(y)[0] - (y[0] * z_i).sum()
            (grad,) = torch.autograd.grad(value, y)
            return float(value.detach()), grad[0].double().numpy()

        gtol = TOL * max(1.0, float(np.linalg.norm(z_np))) / math.sqrt(dim)
        out = minimize(fun, z_np, jac=True, method="L-BFGS-B",
                       options={"gtol": gtol, "ftol": 0.0, "maxiter": 2000, "maxcor": 10})
        found.append(torch.tensor(out.x, dtype=torch.float32))
        evaluations.append(out.nfev)
    seconds = time.perf_counter() - start
    return {"seconds_subset": seconds, "subset": subset,
            "seconds_extrapolated": seconds * z.shape[0] / subset,
            "evaluations_median": float(np.median(evaluations)),
            "residual": residual(model, torch.stack(found), rows)}


def summary(res: torch.Tensor) -> dict:
    return {"residual_median": float(res.median()), "residual_max": float(res.max()),
            "fraction_within_tol": float((res <= TOL).double().mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-iter", type=int, default=1000)
    parser.add_argument("--torch-max-iter", type=int, default=20000)
    parser.add_argument("--torch-max-seconds", type=float, default=600.0)
    parser.add_argument("--check-every", type=int, default=20)
    parser.add_argument("--scipy-subset", type=int, default=32)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = build_potential(args.dim, args.seed)
    torch.manual_seed(args.seed + 1)
    y_true = torch.randn(args.batch, args.dim)
    with torch.no_grad():
        z = gradient_map(model)(y_true)
    print(f"D={args.dim} batch={args.batch} threads={args.threads} float32 tol={TOL} "
          f"load={os.getloadavg()[0]:.1f}; traits {model.energy_traits()}")
    rows = {}
    ours = run_icnn(model, z, args.max_iter)
    rows["icnn.conjugate"] = {**{k: v for k, v in ours.items() if k != "residual"},
                              **summary(ours["residual"])}
    print("icnn.conjugate", json.dumps(rows["icnn.conjugate"]))
    baseline = run_torch_lbfgs(model, z, args.torch_max_iter, args.check_every,
                               args.torch_max_seconds)
    rows["torch.optim.LBFGS (summed batch)"] = {
        **{k: v for k, v in baseline.items() if k != "residual"}, **summary(baseline["residual"])}
    print("torch.optim.LBFGS", json.dumps(rows["torch.optim.LBFGS (summed batch)"]))
    scipy = run_scipy(model, z, args.scipy_subset)
    rows["scipy L-BFGS-B (per example, extrapolated)"] = {
        **{k: v for k, v in scipy.items() if k != "residual"}, **summary(scipy["residual"])}
    print("scipy", json.dumps(rows["scipy L-BFGS-B (per example, extrapolated)"]))
    ratio_torch = baseline["seconds"] / ours["seconds"]
    ratio_scipy = scipy["seconds_extrapolated"] / ours["seconds"]
    print("\n| method | seconds | within 1e-4 | max residual |\n|---|---|---|---|")
    for name, row in rows.items():
        seconds = row.get("seconds", row.get("seconds_extrapolated"))
        print(f"| {name} | {seconds:.2f} | {100 * row['fraction_within_tol']:.1f} % | "
              f"{row['residual_max']:.2e} |")
    reached = rows["torch.optim.LBFGS (summed batch)"]["fraction_within_tol"] == 1.0
    bound = "" if reached else ">= "
    print(f"\nspeed-up of icnn.conjugate: {bound}{ratio_torch:.1f}x vs torch.optim.LBFGS (summed "
          f"batch{'' if reached else ', which had not reached the residual when stopped'}), "
          f"{ratio_scipy:.1f}x vs scipy L-BFGS-B per example (extrapolated from "
          f"{args.scipy_subset} examples)")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"args": vars(args), "rows": rows, "speedup_vs_torch_lbfgs": ratio_torch,
                       "torch_lbfgs_reached_tol": reached,
                       "speedup_vs_scipy_extrapolated": ratio_scipy}, handle, indent=2)


if __name__ == "__main__":
    main()
