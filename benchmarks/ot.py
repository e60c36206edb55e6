"""Neural W2 solvers of ``icnn.ot`` beside the baselines a user would pick, measured in one run.

For each problem (``gaussian:D``, ``mix3tomix10:D``) and one seed, on the same samples:

- ``linear``: the Gaussian OT map between the samples' moments (:class:`icnn.ot.LinearGaussianMap`);
- ``pot``: POT's exact EMD plan on ``--pot-samples`` source/target points, barycentric projection,
  nearest-neighbour extension (:class:`icnn.ot.DiscreteOTMap`);
- ``mm``, ``w2gn``, ``amortized``: ``icnn ot`` runs (:func:`icnn.ot.run.run_ot`), each with the
  same epochs, batch and samples; the final weights are scored (nothing is selected with the true map);
- ``ott``: ott-jax's ``W2NeuralDual`` (JAX on CPU; ``pip install 'icnn-torch[ott]'``) with the
  same batch size, learning rate and hidden widths, its ICNNs started at the Gaussian map of the
  samples like ours, trained in chunks of 100 iterations until the wall time of our slowest solver
  (or ``--ott-seconds``) is spent or our largest step count is reached; its wall time is reported beside ours.

Scores: forward and inverse L2-UVP (%), cos, wall seconds. Writes ``OUT/results.json`` and
``OUT/table.md``.

Run: ``python benchmarks/ot.py --problems mix3tomix10:2 --epochs 10 --out DIR [--no-ott]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

# run as a script, this file's folder comes first on sys.path and would shadow POT's `ot`
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import torch  # noqa: E402

from icnn.checkpoint import atomic_write  # noqa: E402
from icnn.ot.baselines import DiscreteOTMap, LinearGaussianMap  # noqa: E402
from icnn.ot.fit import OTConfig  # noqa: E402
from icnn.ot.metrics import transport_metrics  # noqa: E402
from icnn.ot.problems import make_problem, parse_benchmark  # noqa: E402
from icnn.ot.run import OTRunSpec, run_ot  # noqa: E402

KEYS = ("l2_uvp_forward", "l2_uvp_inverse", "cos_forward", "wall_seconds")


def ott_w2_neural_dual(source: torch.Tensor, target: torch.Tensor, truth, *, steps: int, batch: int,
                       lr: float, hidden: tuple[int, ...], seed: int, seconds: float | None = None,
                       chunk: int = 100) -> dict[str, float]:
    """Train ott-jax's W2NeuralDual for ``steps`` iterations (or, with ``seconds``, in chunks of
    ``chunk`` iterations until that wall-clock budget is spent; its state carries over between
    calls) and score it on ``truth``."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax
    from ott.neural.methods.neuraldual import W2NeuralDual
    from ott.neural.networks.icnn import ICNN

    jax.config.update("jax_platform_name", "cpu")
    xs, ys = source.double().numpy().astype(np.float32), target.double().numpy().astype(np.float32)
    rng = np.random.default_rng(seed)

    def loader(data):
        while True:
            yield jnp.asarray(data[rng.integers(0, data.shape[0], size=batch)])

    dim = xs.shape[1]
    started = time.perf_counter()
    f = ICNN(dim_data=dim, dim_hidden=list(hidden), gaussian_map_samples=(jnp.asarray(xs), jnp.asarray(ys)))
    g = ICNN(dim_data=dim, dim_hidden=list(hidden), gaussian_map_samples=(jnp.asarray(ys), jnp.asarray(xs)))
    per_call = steps if seconds is None else chunk
    solver = W2NeuralDual(dim_data=dim, neural_f=f, neural_g=g, optimizer_f=optax.adam(lr),
                          optimizer_g=optax.adam(lr), num_train_iters=per_call,
                          valid_freq=per_call, log_freq=per_call, rng=jax.random.PRNGKey(seed))
    done = 0
    while True:
        potentials = solver(loader(xs), loader(ys), loader(xs), loader(ys))
        done += per_call
        if seconds is None or time.perf_counter() - started >= seconds or done >= steps:
            break
    spent = time.perf_counter() - started

    def forward(points: torch.Tensor) -> torch.Tensor:
        out = potentials.transport(jnp.asarray(points.double().numpy().astype(np.float32)), forward=True)
        return torch.from_numpy(np.asarray(out, dtype=np.float64)).to(points.dtype)

    def inverse(points: torch.Tensor) -> torch.Tensor:
        out = potentials.transport(jnp.asarray(points.double().numpy().astype(np.float32)), forward=False)
        return torch.from_numpy(np.asarray(out, dtype=np.float64)).to(points.dtype)

    scores = transport_metrics(forward, inverse, truth)
    scores["wall_seconds"] = spent
    scores["steps"] = done
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problems", default="gaussian:2,mix3tomix10:2")
    parser.add_argument("--solvers", default="w2gn,mm,amortized")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--samples", type=int, default=16384)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--schedule", choices=("constant", "cosine"), default="constant")
    parser.add_argument("--mm-inner", type=int, default=1, help="MM: g steps per f step")
    parser.add_argument("--amortized-epochs", type=int, default=None,
                        help="epochs of the amortised solver (default --epochs; its steps cost more)")
    parser.add_argument("--hidden", default="64,64,32")
    parser.add_argument("--quadratic-rank", default="1",
                        help="rank of the quadratic terms, or 'full' for D - 1")
    parser.add_argument("--pot-samples", type=int, default=4096)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-ott", action="store_true", help="skip ott-jax's W2NeuralDual")
    parser.add_argument("--ott-seconds", type=float, default=None,
                        help="wall-clock budget of W2NeuralDual (default: our largest solver's wall time); "
                             "it stops at our largest step count too")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    hidden = tuple(int(h) for h in args.hidden.split(","))
    results = []
    for problem in args.problems.split(","):
        _, dim = parse_benchmark(problem)
        source, target, truth = make_problem(problem, args.samples, args.seed)
        rows: dict[str, dict[str, float]] = {}
        started = time.perf_counter()
        linear = LinearGaussianMap(source, target)
        rows["linear"] = {**transport_metrics(linear, linear.inverse, truth),
                          "wall_seconds": time.perf_counter() - started}
        started = time.perf_counter()
        plan = DiscreteOTMap(source[: args.pot_samples], target[: args.pot_samples])
        rows["pot"] = {**transport_metrics(plan, plan.inverse, truth),
                       "wall_seconds": time.perf_counter() - started}
        rank = max(dim - 1, 1) if args.quadratic_rank == "full" else int(args.quadratic_rank)
        steps, budget = 0, 0.0
        for solver in [name for name in args.solvers.split(",") if name]:
            epochs = args.amortized_epochs if solver == "amortized" and args.amortized_epochs else args.epochs
            config = OTConfig(solver=solver, hidden=hidden, epochs=epochs, batch_size=args.batch_size,
                              lr=args.lr, seed=args.seed, quadratic_rank=rank, schedule=args.schedule,
                              mm_inner=args.mm_inner)
            spec = OTRunSpec(benchmark=problem, samples=args.samples, threads=args.threads)
            report = run_ot(spec, config, out / problem.replace(":", "-") / solver)
            rows[solver] = {k: report[k] for k in (*KEYS, "steps", "cos_inverse") if k in report}
            steps = max(steps, report["steps"])
            budget = max(budget, report["wall_seconds"])
            print(problem, solver, {k: round(v, 4) for k, v in rows[solver].items()}, flush=True)
        if not args.no_ott:
            try:
                rows["ott_w2_neural_dual"] = ott_w2_neural_dual(
                    source, target, truth, steps=steps or 1000, batch=args.batch_size, lr=args.lr,
                    hidden=hidden, seed=args.seed,
                    seconds=args.ott_seconds if args.ott_seconds is not None else budget)
            except ImportError as error:
                rows["ott_w2_neural_dual"] = {"error": f"not installed: {error}"}
        for name in ("linear", "pot", "ott_w2_neural_dual"):
            if name in rows:
                print(problem, name, rows[name], flush=True)
        results.append({"problem": problem, "dim": dim, "samples": args.samples, "seed": args.seed,
                        "epochs": args.epochs, "batch_size": args.batch_size, "rows": rows})
    text = json.dumps(results, indent=1)
    atomic_write(out / "results.json", lambda tmp: Path(tmp).write_text(text))
    lines = ["| problem | method | L2-UVP fwd % | L2-UVP inv % | cos | wall s |", "|---|---|---|---|---|---|"]
    for result in results:
        for name, row in result["rows"].items():
            if "error" in row:
                lines.append(f"| {result['problem']} | {name} | {row['error']} | | | |")
                continue
            lines.append(f"| {result['problem']} | {name} | {row['l2_uvp_forward']:.2f} | "
                         f"{row.get('l2_uvp_inverse', float('nan')):.2f} | {row['cos_forward']:.3f} | "
                         f"{row['wall_seconds']:.1f} |")
    table = "\n".join(lines) + "\n"
    atomic_write(out / "table.md", lambda tmp: Path(tmp).write_text(table))
    print(table)


if __name__ == "__main__":
    main()
