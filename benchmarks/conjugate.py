"""Speed and accuracy of ``icnn.conjugate`` against the two ways people compute conjugates.

The potential: the ``f`` of a DenseICNN-like W2 map on ``D = 64`` (:class:`icnn.FICNN`, hidden
128-128-128, CELU, ``quadratic_rank=1``, ``strong_convexity=1e-3``), *trained*: it starts at the
Gaussian OT map between the samples' moments (:func:`icnn.potentials.gaussian_map_init`) and then
takes ``--train-steps`` Adam steps of W2GN (:func:`icnn.ot.fit_transport`, ``solver="w2gn"``) on
the Mix3toMix10 D=64 pair of Korotin et al.'s benchmark (``icnn.ot.make_problem``), float32.
``--train-steps 0`` benchmarks the untrained Gaussian-initialised potential instead. The dual
points: ``z = grad f(y)`` for fresh source samples ``y`` (the inverse map the conjugate computes),
batch 4096. Every method starts from ``y0 = z`` and must bring every example's relative residual
``||grad f(y) - z|| / max(||z||, ||grad f(y)||)`` (:func:`icnn.conjugate`'s definition) to
``<= 1e-4``; the residuals are re-measured here with :func:`icnn.gradient_map` after each
method, not taken from it.

Methods, measured in the same run, one thread:

- ``icnn.conjugate`` (per-example L-BFGS through ``icnn.argmin``, residual-checked rounds),
  asked for ``0.99e-4`` (see :func:`run_icnn`);
- ``torch.optim.LBFGS`` on the summed batch (CP-Flow's way: one L-BFGS over the ``B x D``
  variables of ``sum_i f(y_i) - <y_i, z_i>``, strong-Wolfe line search, memory 10), stopped
  when every example's residual is ``<= 1e-4`` (checked every ``--check-every`` iterations,
  the checks untimed), or at ``--torch-max-iter`` iterations or ``--torch-max-seconds``
  (then the speed-up is printed as a lower bound: the baseline had not reached the residual).
  In float32 the summed objective (``B`` terms) is itself rounded at ``~1e-7 * |sum|``, which
  hides the per-example progress its line search needs near the end; so the baseline is also
  run once on a float64 copy of the potential (``--torch-float64-max-seconds``, 0 to skip),
  labelled so, and compared with ``icnn.conjugate`` on the same float64 copy;
- scipy ``L-BFGS-B`` per example (float64 NumPy around the float32 model), on
  ``--scipy-subset`` examples, its time extrapolated linearly to the batch and labelled so
  (see :func:`run_scipy` for its stopping rule); a ``>=`` marks a speed-up over a baseline that
  did not reach the residual on every example.

Run: ``python benchmarks/conjugate.py [--threads 1] [--batch 4096] [--dim 64] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import time

import numpy as np
import torch

import icnn
from icnn.potentials import gradient_map

TOL = 1e-4


def build_potential(dim: int, seed: int, train_steps: int, samples: int
                    ) -> tuple[icnn.FICNN, torch.Tensor, dict]:
    """The benchmark's potential ``f``, fresh source samples, and how ``f`` was made.

    ``f`` is a TransportModel's potential trained by W2GN for ``train_steps`` Adam steps (batch
    256) on ``samples`` Mix3toMix10 pairs of dimension ``dim`` from its Gaussian-map start
    (``train_steps = 0``: the start itself), float32, frozen.
    """
    from icnn.ot import OTConfig, fit_transport
    from icnn.ot.problems import make_problem

    spec = f"mix3tomix10:{dim}"
    source, target, _ = make_problem(spec, samples, seed)
    batch_size = 256
    steps_per_epoch = math.ceil(samples / batch_size)
    epochs = max(1, math.ceil(train_steps / steps_per_epoch))
    width = max(2 * dim, 64)
    config = OTConfig(solver="w2gn", hidden=(width, width, width), activation="celu",
                      strong_convexity=1e-3, quadratic_rank=1, start="gaussian",
                      epochs=epochs if train_steps else 1, batch_size=batch_size, lr=1e-3,
                      seed=seed, eval_points=256)
    start = time.perf_counter()
    if train_steps:
        fit = fit_transport(source, target, config)
        model = fit.model.f
        history = fit.history
    else:
        from icnn.ot import TransportModel

        torch.manual_seed(seed)
        transport = TransportModel(config.potential_config(dim, 0))
        transport.start_gaussian(source, target)
        model, history = transport.f, []
    seconds = time.perf_counter() - start
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    fresh, _, _ = make_problem(spec, samples, seed + 1)
    how = {"problem": spec, "solver": "w2gn" if train_steps else "none (Gaussian-map start)",
           "steps": epochs * steps_per_epoch if train_steps else 0, "batch_size": batch_size,
           "samples": samples, "seconds": seconds,
           "last_epoch": {k: v for k, v in (history[-1] if history else {}).items()
                          if isinstance(v, int | float)}}
    return model, fresh, how


def residual(model: icnn.FICNN, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """``||grad f(y) - z|| / max(||z||, ||grad f(y)||)`` per row, in the model's dtype."""
    with torch.no_grad():
        grad = gradient_map(model)(y.to(z.dtype))
    return (grad - z).norm(dim=1) / torch.maximum(z.norm(dim=1), grad.norm(dim=1))


def run_icnn(model, z, max_iter):
    """``icnn.conjugate`` asked for ``0.99 * TOL``.

    The 1 % margin covers the float32 re-measurement here, which evaluates ``grad f`` on the whole
    batch at once and rounds differently (``~1e-8`` relative) from the solver's per-round subsets;
    without it a row stopped at ``9.99995e-5`` can re-measure at ``1.000005e-4``.
    """
    start = time.perf_counter()
    result = icnn.conjugate(model, z, tol=0.99 * TOL, max_iter=max_iter)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "iterations": result.iterations,
            "evaluations_median": float(result.evaluations.double().median()),
            "evaluations_max": int(result.evaluations.max()),
            "converged_reported": float(result.converged.double().mean()),
            "residual": residual(model, result.y, z)}


def run_torch_lbfgs(model, z, max_iter, check_every, max_seconds):
    """``torch.optim.LBFGS`` on the summed batch, in the dtype of ``model`` and ``z``."""
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
        previous, iterations = iterations, int(state["n_iter"])
        res = residual(model, y.detach(), z)
        if not bool(torch.isfinite(res).all()) or iterations == previous:
            break  # diverged, or LBFGS made no step (its own tolerances)
    state = optimiser.state[optimiser._params[0]]
    return {"seconds": seconds, "iterations": iterations,
            "evaluations": int(state["func_evals"]), "residual": res}


def run_scipy(model, z, subset):
    """scipy ``L-BFGS-B`` per example on the first ``subset`` rows of ``z`` (float64 NumPy).

    Each row minimises ``f(y) - <y, z>`` from ``y0 = z`` with ``gtol = 1e-4 max(||z||, 1) /
    sqrt(D)`` on the sup-norm of the (float32 model's) gradient, ``ftol = 0`` and at most 2000
    iterations: stopping *on gtol* implies the residual ``<= 1e-4`` up to the max in its
    denominator, but L-BFGS-B also stops when its line search fails (``ABNORMAL_TERMINATION``),
    or when ``f`` no longer decreases at all (``RELATIVE REDUCTION OF F <= FACTR*EPSMCH``, which
    ``ftol = 0`` does not switch off), both of which the float32 rounding of ``f`` causes near
    the end; those rows may miss the residual.
    The stop messages are counted in ``messages``; the residuals are re-measured.
    """
    from scipy.optimize import minimize

    dim = z.shape[1]
    rows = z[:subset]
    found = []
    evaluations = []
    messages: dict[str, int] = {}
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
        message = str(out.message)
        messages[message] = messages.get(message, 0) + 1
    seconds = time.perf_counter() - start
    return {"seconds_subset": seconds, "subset": subset,
            "seconds_extrapolated": seconds * z.shape[0] / subset,
            "evaluations_median": float(np.median(evaluations)), "messages": messages,
            "residual": residual(model, torch.stack(found), rows)}


def summary(res: torch.Tensor) -> dict:
    return {"residual_median": float(res.median()), "residual_max": float(res.max()),
            "fraction_within_tol": float((res <= TOL).double().mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--dim", type=int, default=64, help="a Mix3toMix10 dimension")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-steps", type=int, default=320,
                        help="W2GN steps on the potential before benchmarking (0: untrained)")
    parser.add_argument("--train-samples", type=int, default=8192)
    parser.add_argument("--max-iter", type=int, default=1000)
    parser.add_argument("--torch-max-iter", type=int, default=20000)
    parser.add_argument("--torch-max-seconds", type=float, default=600.0)
    parser.add_argument("--torch-float64-max-seconds", type=float, default=300.0,
                        help="budget of the float64 torch.optim.LBFGS run (0: skip it)")
    parser.add_argument("--check-every", type=int, default=20)
    parser.add_argument("--scipy-subset", type=int, default=32)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, fresh, how = build_potential(args.dim, args.seed, args.train_steps,
                                        max(args.train_samples, args.batch))
    y_true = fresh[:args.batch]
    with torch.no_grad():
        z = gradient_map(model)(y_true)
    print(f"D={args.dim} batch={args.batch} threads={args.threads} float32 tol={TOL} "
          f"load={os.getloadavg()[0]:.1f}; traits {model.energy_traits()}")
    print("potential", json.dumps(how))
    rows = {}
    ours = run_icnn(model, z, args.max_iter)
    rows["icnn.conjugate"] = {**{k: v for k, v in ours.items() if k != "residual"},
                              **summary(ours["residual"])}
    print("icnn.conjugate", json.dumps(rows["icnn.conjugate"]))
    torch_name = "torch.optim.LBFGS (summed batch)"
    baseline = run_torch_lbfgs(model, z, args.torch_max_iter, args.check_every,
                               args.torch_max_seconds)
    rows[torch_name] = {**{k: v for k, v in baseline.items() if k != "residual"},
                        **summary(baseline["residual"])}
    print("torch.optim.LBFGS", json.dumps(rows[torch_name]))
    # baseline row -> (its seconds key, label, the icnn.conjugate row it is compared with)
    names = {torch_name: ("seconds", "torch.optim.LBFGS (summed batch, float32)",
                          "icnn.conjugate")}
    if args.torch_float64_max_seconds > 0:
        model64 = copy.deepcopy(model).double()
        ours64 = run_icnn(model64, z.double(), args.max_iter)
        rows["icnn.conjugate (float64 copy)"] = {
            **{k: v for k, v in ours64.items() if k != "residual"}, **summary(ours64["residual"])}
        print("icnn.conjugate float64", json.dumps(rows["icnn.conjugate (float64 copy)"]))
        name64 = "torch.optim.LBFGS (summed batch, float64 copy)"
        run64 = run_torch_lbfgs(model64, z.double(), args.torch_max_iter, args.check_every,
                                args.torch_float64_max_seconds)
        rows[name64] = {**{k: v for k, v in run64.items() if k != "residual"},
                        **summary(run64["residual"])}
        print("torch.optim.LBFGS float64", json.dumps(rows[name64]))
        names[name64] = ("seconds", "torch.optim.LBFGS (summed batch, float64 copy; against "
                                    "icnn.conjugate on the same float64 copy)",
                         "icnn.conjugate (float64 copy)")
    scipy_name = "scipy L-BFGS-B (per example, extrapolated)"
    scipy = run_scipy(model, z, args.scipy_subset)
    rows[scipy_name] = {**{k: v for k, v in scipy.items() if k != "residual"},
                        **summary(scipy["residual"])}
    print("scipy", json.dumps(rows[scipy_name]))
    names[scipy_name] = ("seconds_extrapolated",
                         f"scipy L-BFGS-B per example (extrapolated from {args.scipy_subset})",
                         "icnn.conjugate")
    print("\n| method | seconds | within 1e-4 | max residual |\n|---|---|---|---|")
    for name, row in rows.items():
        seconds = row.get("seconds", row.get("seconds_extrapolated"))
        reached = "" if row["fraction_within_tol"] == 1.0 else " (not reached)"
        print(f"| {name} | {seconds:.2f}{reached} | {100 * row['fraction_within_tol']:.1f} % | "
              f"{row['residual_max']:.2e} |")
    speedups = {}
    parts = []
    for name, (key, label, reference) in names.items():
        row = rows[name]
        reached = row["fraction_within_tol"] == 1.0
        ratio = row[key] / rows[reference]["seconds"]
        speedups[name] = {"ratio": ratio, "reached_tol": reached, "against": reference,
                          "lower_bound": not reached}
        share = 100 * row["fraction_within_tol"]
        tail = "" if reached else f" (not reached: {share:.1f} % within 1e-4 when stopped)"
        parts.append(f"{'' if reached else '>= '}{ratio:.1f}x vs {label}{tail}")
    print("\nspeed-up of icnn.conjugate: " + "; ".join(parts))
    print("note: float32 summed-batch LBFGS is partly limited by float32 rounding of the summed "
          "objective (its float64 row, against icnn.conjugate in float64, shows how much)")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"args": vars(args), "potential": how, "rows": rows,
                       "speedups": speedups,
                       "speedup_vs_torch_lbfgs": speedups[torch_name]["ratio"],
                       "torch_lbfgs_reached_tol": speedups[torch_name]["reached_tol"],
                       "speedup_vs_scipy_extrapolated": speedups[scipy_name]["ratio"],
                       "scipy_reached_tol": speedups[scipy_name]["reached_tol"]},
                      handle, indent=2)


if __name__ == "__main__":
    main()
