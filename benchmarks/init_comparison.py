"""Principled ICNN initialisation (Hoedt & Klambauer, 2023) against PyTorch's default.

Task: regress a convex target ``t(y) = logsumexp(A y) + 0.5 ||B y||^2`` (``y_dim`` 16) with an
FICNN of three hidden layers, full-batch Adam, several seeds. Baseline named ``default``:
``nn.Linear``'s own draw made non-negative by ``|W|`` (what the paper's code did).
Reported per init: test MSE after 50, 200 and all steps (mean ± std over seeds) and the steps
to reach a test MSE of 5% of the target variance.

Usage: ``python benchmarks/init_comparison.py [--seeds 5] [--steps 600]``
"""

from __future__ import annotations

import argparse
import statistics

import torch

import icnn


def target_fn(y: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.logsumexp(y @ a.T, dim=1) + 0.5 * (y @ b.T).square().sum(1)


def run(init: str, seed: int, args: argparse.Namespace) -> dict[str, float]:
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
    return {"at_50": curve[49], "at_200": curve[199], "final": curve[-1], "steps_to_mse_1": reach}


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


if __name__ == "__main__":
    main()
