"""Principled ICNN initialisation (Hoedt & Klambauer, 2023) against PyTorch's default.

Task: regress a convex target ``t(y) = logsumexp(A y) + 0.5 ||B y||^2`` (``y_dim`` 16) with an
FICNN of three hidden layers, full-batch Adam, several seeds. Baseline named ``default``:
``nn.Linear``'s own draw made non-negative by ``|W|`` (what the paper's code did).
Reported per init: test MSE after 50, 200 and all steps (mean ± std over seeds) and the steps
to reach a test MSE of 5% of the target variance.

Usage: ``python benchmarks/init_comparison.py [--seeds 5] [--steps 600] [--plot curves.png]``
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any

import torch

import icnn


def target_fn(y: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.logsumexp(y @ a.T, dim=1) + 0.5 * (y @ b.T).square().sum(1)


def run(init: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    generator = torch.Generator().manual_seed(1234)  # same data for every run
    a = torch.randn(32, args.y_dim, generator=generator)
    b = torch.randn(args.y_dim, args.y_dim, generator=generator) / args.y_dim**0.5
    y_train = torch.randn(2048, args.y_dim, generator=generator)
    y_test = torch.randn(1024, args.y_dim, generator=generator)
    t_train, t_test = target_fn(y_train, a, b), target_fn(y_test, a, b)
    mean, std = t_train.mean(), t_train.std()
    torch.manual_seed(seed)
    model = icnn.FICNN(args.y_dim, args.hidden, init=init)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    curve = []
    for _ in range(args.steps):
        loss = (model(y_train) - (t_train - mean) / std).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            curve.append(float((model(y_test) - (t_test - mean) / std).square().mean()))
    reach = next((i + 1 for i, v in enumerate(curve) if v <= 1.0), float("nan"))
    return {"at_50": curve[49], "at_200": curve[199], "final": curve[-1], "steps_to_mse_1": reach,
            "curve": curve}


def summary(values: list[float]) -> str:
    finite = [v for v in values if v == v]
    if not finite:
        return "never"
    spread = statistics.stdev(finite) if len(finite) > 1 else 0.0
    missing = len(values) - len(finite)
    return f"{statistics.mean(finite):.4f} ± {spread:.4f}" + (f" ({missing} never)" if missing else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--hidden", type=int, nargs="+", default=[128, 128, 128])
    parser.add_argument("--y-dim", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--plot", default=None, help="PNG file for the test-MSE curves (matplotlib)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"FICNN hidden {args.hidden}, y_dim {args.y_dim}, Adam lr {args.lr}, {args.steps} "
          f"full-batch steps, seeds 0..{args.seeds - 1}; test MSE on standardised target")
    results = {init: [run(init, s, args) for s in range(args.seeds)] for init in ("icnn", "default")}
    keys = ("at_50", "at_200", "final", "steps_to_mse_1")
    print(f"{'init':<8} " + " ".join(f"{k:>24}" for k in keys))
    for init, runs in results.items():
        print(f"{init:<8} " + " ".join(f"{summary([r[k] for r in runs]):>24}" for k in keys))
    ratio = statistics.mean(r["final"] for r in results["default"]) / statistics.mean(
        r["final"] for r in results["icnn"])
    print(f"final-loss ratio default / icnn: {ratio:.2f}x")
    if args.plot:
        plot_curves(results, args.plot)


def plot_curves(results: dict[str, list[dict[str, Any]]], path: str) -> None:
    """Test MSE against steps per init: the mean over seeds and the band from min to max."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.8))
    for init, runs in results.items():
        curves = torch.tensor([r["curve"] for r in runs])
        steps = torch.arange(1, curves.shape[1] + 1)
        ax.plot(steps, curves.mean(0), label=f"init={init!r} (mean of {len(runs)} seeds)")
        ax.fill_between(steps, curves.min(0).values, curves.max(0).values, alpha=0.25)
    ax.axhline(1.0, color="gray", ls=":", lw=1, label="MSE 1.0 (predicting the mean)")
    ax.set_yscale("log")
    ax.set_xlabel("full-batch Adam step")
    ax.set_ylabel("test MSE (standardised target)")
    ax.set_title("FICNN initialisation: Hoedt & Klambauer (2023) vs default")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
