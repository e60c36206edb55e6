"""``icnn ot``: fit a neural optimal transport map; ``icnn ot map``: apply a fitted one."""

from __future__ import annotations

import argparse
import sys

from .fit import SOLVERS

HELP = "fit a W2 optimal transport map with an ICNN potential (MM, W2GN or amortised conjugate)"
DESCRIPTION = (
    "Fit T = grad f, the optimal transport map for the squared Euclidean cost, between samples "
    "of two distributions (--source/--target .npy files of shape (N, D), optionally with per-sample "
    "contexts for conditional maps) or a benchmark pair (--benchmark gaussian:D | mix3tomix10:D), "
    "with one of three solvers. Writes DIR/metrics.json (L2-UVP forward/inverse and cos against the "
    "true map when there is one, the W2^2 estimate, conjugate statistics, time per step, wall time, "
    "seed), DIR/curve.csv (per epoch), DIR/transport.safetensors (the fitted maps), DIR/train/ "
    "(resumable checkpoints) and, for D = 2, DIR/transport.png. `icnn ot map` applies a fitted map."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the flags of ``icnn ot`` to ``parser``, each with a help text."""
    data = parser.add_argument_group("data")
    data.add_argument("--source", help="(N, D) .npy samples of the source distribution P")
    data.add_argument("--target", help="(M, D) .npy samples of the target distribution Q")
    data.add_argument("--source-context", help="(N, C) .npy context per source sample (conditional map)")
    data.add_argument("--target-context", help="(M, C) .npy context per target sample (conditional map)")
    data.add_argument("--benchmark", help="gaussian:D (D in 1..256) or mix3tomix10:D (D in 2,4,...,64)")
    data.add_argument("--samples", type=int, default=None,
                      help="samples drawn from each benchmark distribution (training set; default 16384; "
                           "only with --benchmark)")
    data.add_argument("--pair-seed", type=int, default=None,
                      help="seed of the gaussian:D pair (default: --seed, as the recorded runs; fix it to "
                           "compare training seeds on one pair)")
    parser.add_argument("--solver", choices=SOLVERS, default="w2gn", help="neural W2 solver")
    parser.add_argument("--out", help="run folder (created if missing)")
    parser.add_argument("--epochs", type=int, default=20, help="passes over the training pairs")
    parser.add_argument("--batch-size", type=int, default=256, help="pairs per step")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam step size")
    parser.add_argument("--schedule", choices=("constant", "cosine"), default="constant",
                        help="learning-rate schedule over the epochs")
    parser.add_argument("--average", type=float, default=None,
                        help="exponential moving average of the weights with this decay (e.g. 0.99)")
    parser.add_argument("--hidden", default="64,64,32", help="comma-separated hidden widths of f and g")
    parser.add_argument("--activation", default="celu", help="ICNN activation (celu, softplus, elu)")
    parser.add_argument("--strong-convexity", type=float, default=1e-3, help="mu of the potentials")
    parser.add_argument("--quadratic-rank", type=int, default=1,
                        help="rank of each ICNN unit's PSD quadratic term (0: none)")
    parser.add_argument("--start", choices=("gaussian", "identity", "random"), default="gaussian",
                        help="initial map: the Gaussian map of the samples' moments, the identity, "
                             "(both need --quadratic-rank >= 1; exact with --quadratic-rank >= D-1 or "
                             "--output-quadratic on/auto, otherwise a rank-R part of the map's matrix: a "
                             "warning, and start_error / start_warning in metrics.json) or the networks' "
                             "random initialisation. The recorded mix3tomix10 runs at D >= 4 in "
                             "experiments/results/ot predate --output-quadratic: they used "
                             "--quadratic-rank 1 and this inexact start")
    parser.add_argument("--output-quadratic", default="auto", choices=("auto", "on", "off"),
                        help="full-rank PSD quadratic 1/2 y^T L L^T y + b^T y on each potential's output, "
                             "which makes the gaussian/identity start exact at any --quadratic-rank; auto: "
                             "exactly when --quadratic-rank < D-1 and --start is not random")
    parser.add_argument("--mm-inner", type=int, default=1, help="MM: g steps per f step")
    parser.add_argument("--cycle", type=float, default=1.0, help="W2GN cycle weight lambda")
    parser.add_argument("--amortization", choices=("regression", "objective"), default="regression",
                        help="how the amortised solver trains g")
    parser.add_argument("--conjugate-tol", type=float, default=1e-4,
                        help="relative residual of the conjugate solves (amortised solver)")
    parser.add_argument("--conjugate-max-iter", type=int, default=100, help="conjugate iteration cap")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the benchmark samples (and of the gaussian pair unless --pair-seed) "
                             "and of the training; not 12345 with gaussian:D (its test points' seed)")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32", help="precision")
    parser.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:1)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--resume", action="store_true", help="continue from DIR/train/checkpoints")
    parser.add_argument("--progress", action="store_true", help="show a progress bar")
    actions = parser.add_subparsers(dest="ot_action", metavar="ACTION",
                                    help="omit to train a map; 'map' applies a trained map")
    mapper = actions.add_parser("map", help="apply a fitted map (or its inverse) to points",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    mapper.add_argument("--checkpoint", required=True, help="transport.safetensors of an `icnn ot` run")
    mapper.add_argument("--inputs", required=True, help="(n, D) .npy points")
    mapper.add_argument("--context", help="(n, C) .npy context per point (conditional maps)")
    mapper.add_argument("--inverse", action="store_true", help="apply the inverse map Q -> P")
    mapper.add_argument("--allow-unconverged", action="store_true",
                        help="amortised --inverse: write the points whose conjugate solve did not converge "
                             "(their count goes to stderr) instead of refusing with exit 2")
    mapper.add_argument("--out", dest="map_out", required=True, help="output .npy of shape (n, D)")
    mapper.set_defaults(_run=run_map)


def run(args: argparse.Namespace) -> int:
    """Run ``icnn ot`` with the parsed ``args``; return the exit status (0 on success)."""
    from .run import OTRunSpec, run_ot

    if args.out is None:
        raise ValueError("expected --out DIR (the run folder), got none")
    if args.samples is not None and args.benchmark is None:
        raise ValueError(f"expected --samples only with --benchmark (files use all their rows), got "
                         f"--samples {args.samples} with --source/--target")
    if args.pair_seed is not None and not str(args.benchmark or "").startswith("gaussian:"):
        raise ValueError(f"expected --pair-seed only with --benchmark gaussian:D, got --benchmark "
                         f"{args.benchmark}")
    spec = OTRunSpec(
        source=args.source, target=args.target, source_context=args.source_context,
        target_context=args.target_context, benchmark=args.benchmark,
        samples=16384 if args.samples is None else args.samples, pair_seed=args.pair_seed,
        dtype=args.dtype, device=args.device, threads=args.threads, resume=args.resume,
    )
    config = _config(args)
    report = run_ot(spec, config, args.out)
    shown = {k: report[k] for k in ("l2_uvp_forward", "l2_uvp_inverse", "cos_forward",
                                     "w2_squared_estimate", "wall_seconds") if k in report}
    print(" ".join(f"{k}={v:.4g}" for k, v in shown.items()))
    print(f"wrote {args.out}/metrics.json, curve.csv and transport.safetensors")
    return 0


def _config(args: argparse.Namespace):
    from .fit import OTConfig

    try:
        hidden = tuple(int(h) for h in str(args.hidden).split(",") if h.strip())
    except ValueError:
        raise ValueError(f"expected --hidden as comma-separated ints, got {args.hidden!r}") from None
    return OTConfig(solver=args.solver, hidden=hidden, activation=args.activation,
                    strong_convexity=args.strong_convexity, quadratic_rank=args.quadratic_rank,
                    start=args.start, output_quadratic=args.output_quadratic, mm_inner=args.mm_inner,
                    epochs=args.epochs, batch_size=args.batch_size,
                    lr=args.lr, seed=args.seed, average=args.average, schedule=args.schedule,
                    cycle=args.cycle, amortization=args.amortization, conjugate_tol=args.conjugate_tol,
                    conjugate_max_iter=args.conjugate_max_iter, progress=args.progress)


def run_map(args: argparse.Namespace) -> int:
    """Run ``icnn ot map``: apply a fitted map (or its inverse) to points; return the exit status."""
    from .run import apply_map

    unconverged: list[int] = []
    count = apply_map(args.checkpoint, args.inputs, args.map_out, context=args.context,
                      inverse=args.inverse, allow_unconverged=args.allow_unconverged, unconverged=unconverged)
    if unconverged and unconverged[0]:
        print(f"icnn ot map: warning: {unconverged[0]} of {count} conjugate solves did not converge "
              "(their rows are the solver's last iterates)", file=sys.stderr)
    print(f"wrote {count} {'inverse-' if args.inverse else ''}mapped points to {args.map_out}")
    return 0
