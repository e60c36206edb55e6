"""Forward+backward cost of the convexity machinery, as ratios measured in the same run.

Baselines (named, measured here, same widths and batch):
- ``mlp``: an unconstrained ``nn.Sequential`` MLP on the same input (``[x; y]`` for the PICNN);
- ``same-arch, unconstrained``: the identical ICNN with ``constraint="project"`` and no projection
  step, i.e. plain parameters. ``softplus``/``exp`` minus this is the price of the parametrisation;
  ICNN minus MLP is the price of the architecture (passthrough, gates).

Usage: ``python benchmarks/overhead.py [--hidden 256 256] [--repeats 30] [--threads 2]``
"""

from __future__ import annotations

import argparse

import torch
from interleaved_timing import time_interleaved
from torch import nn

import icnn


def mlp(in_dim: int, hidden: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_dim, width), nn.ReLU()]
        in_dim = width
    layers.append(nn.Linear(in_dim, 1))
    return nn.Sequential(*layers)


def make_step(model: nn.Module, inputs: tuple[torch.Tensor, ...]):
    def step() -> None:
        out = model(*inputs)
        out.sum().backward()
        model.zero_grad(set_to_none=True)

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--hidden", type=int, nargs="+", default=[256, 256])
    parser.add_argument("--x-dim", type=int, default=64)
    parser.add_argument("--y-dim", type=int, default=32)
    parser.add_argument("--batches", type=int, nargs="+", default=[256, 4096])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {args.threads} threads, hidden {args.hidden}, "
          f"x_dim {args.x_dim}, y_dim {args.y_dim}; median of {args.repeats} fwd+bwd steps")
    print(f"{'model':<8} {'batch':>6} {'variant':<20} {'ms':>8} {'vs mlp':>8} {'vs plain':>9}")
    for batch in args.batches:
        y = torch.randn(batch, args.y_dim)
        x = torch.randn(batch, args.x_dim)
        cases = {
            "FICNN": (lambda c: icnn.FICNN(args.y_dim, args.hidden, constraint=c), (y,),
                      mlp(args.y_dim, args.hidden), (y,)),
            "PICNN": (lambda c: icnn.PICNN(args.x_dim, args.y_dim, args.hidden, constraint=c),
                      (x, y), mlp(args.x_dim + args.y_dim, args.hidden), (torch.cat([x, y], 1),)),
        }
        for name, (build, inputs, baseline, baseline_inputs) in cases.items():
            steps = {"mlp": make_step(baseline, baseline_inputs),
                     "plain": make_step(build("project"), inputs)}
            for constraint in ("softplus", "exp"):
                steps[constraint] = make_step(build(constraint), inputs)
            with icnn.validation(False):
                t = time_interleaved(steps, args.repeats, warmup=3)
            t["softplus+validation"] = time_interleaved(
                {"v": make_step(build("softplus"), inputs)}, args.repeats, warmup=3)["v"]
            for variant, seconds in t.items():
                print(f"{name:<8} {batch:>6} {variant:<20} {seconds * 1e3:>8.3f} "
                      f"{seconds / t['mlp']:>8.2f} {seconds / t['plain']:>9.2f}")


if __name__ == "__main__":
    main()
