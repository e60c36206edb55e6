"""``icnn figure synthetic``: the paper's Figure 3 (decision regions on 2-D datasets)."""

from __future__ import annotations

import argparse

HELP = "draw a figure of the paper (synthetic: Figure 3, decision regions of FF/FICNN/PICNN)"
DESCRIPTION = (
    "Draw a figure of the paper. 'synthetic' trains a feedforward classifier, an FICNN energy "
    "(jointly convex in [x; y]) and a PICNN energy (convex in y) on scikit-learn's moons, "
    "circles and linear datasets, predicts y_hat = argmin_y E(x, y) by unrolled momentum "
    "descent, and writes DIR/synthetic.png (rows: models, columns: datasets) and "
    "DIR/accuracy.json (train/test accuracy per model and dataset)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the flags of ``icnn figure`` to ``parser``, each with a help text."""
    parser.add_argument("name", choices=["synthetic"], help="which figure to draw")
    parser.add_argument("--out", required=True, help="output directory (created if missing)")
    parser.add_argument("--datasets", default="moons,circles,linear",
                        help="comma-separated columns: any of moons, circles, linear")
    parser.add_argument("--models", default="ff,ficnn,picnn",
                        help="comma-separated rows: any of ff, ficnn, picnn")
    parser.add_argument("--hidden", default="200,200",
                        help="comma-separated hidden widths of every network")
    parser.add_argument("--epochs", type=int, default=200, help="full-batch Adam epochs")
    parser.add_argument("--lr", type=float, default=1e-2, help="Adam step size")
    parser.add_argument("--steps", type=int, default=30,
                        help="unrolled momentum-descent steps of inference")
    parser.add_argument("--inference-lr", type=float, default=0.01,
                        help="step size of the inference descent")
    parser.add_argument("--box", action="store_true",
                        help="project the inference iterates onto y in [0, 1]")
    parser.add_argument("--n-samples", type=int, default=100, help="points per dataset")
    parser.add_argument("--test-fraction", type=float, default=0.4,
                        help="share of the points held out for the test accuracy")
    parser.add_argument("--grid", type=int, default=60,
                        help="decision-region grid resolution per axis")
    parser.add_argument("--seed", type=int, default=42, help="random seed of every run")
    parser.add_argument("--progress", action="store_true", help="show per-epoch progress bars")


def run(args: argparse.Namespace) -> int:
    """Run ``icnn figure`` with the parsed ``args``; return the exit status (0 on success)."""
    import json

    from .figure import FigureConfig, make_figure

    config = FigureConfig(
        datasets=tuple(_names(args.datasets)), models=tuple(_names(args.models)),
        hidden=tuple(int(h) for h in _names(args.hidden)), epochs=args.epochs, lr=args.lr,
        steps=args.steps, inference_lr=args.inference_lr, box=args.box,
        n_samples=args.n_samples, test_fraction=args.test_fraction, grid=args.grid,
        seed=args.seed, progress=args.progress,
    )
    report = make_figure(config, args.out)
    print(json.dumps(report["accuracy"], indent=1))
    print(f"wrote {args.out}/{report['figure']} and {args.out}/accuracy.json")
    return 0


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]
