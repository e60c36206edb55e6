"""Over-fitting check of a fitted ``icnn ot`` benchmark run from sampler data only (no true map).

Evaluates the W2GN objective (dual value + cycle term, averaged over pairs) and the sample W2²
estimate ``mean ||∇f(x) - x||²`` of a run's final weights on its training samples (``seed``) and on
fresh samples of the same benchmark (``seed + 1000``), and with ``--with-start`` the
Gaussian-map start of the same architecture. A held-out objective well above the training
one means the potentials fit the finite training sample rather than the distributions.

Run: ``python experiments/results/ot/heldout.py RUN_DIR BENCHMARK [--samples N] [--seed S]``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import torch  # noqa: E402

from icnn.ot.checkpoint import load_transport  # noqa: E402
from icnn.ot.gaussian_pair import GaussianPair  # noqa: E402
from icnn.ot.metrics import w2_squared  # noqa: E402
from icnn.ot.problems import make_problem, parse_benchmark  # noqa: E402
from icnn.ot.transport_model import TransportModel  # noqa: E402
from icnn.ot.w2bench import Mix3toMix10  # noqa: E402
from icnn.ot.w2gn import w2gn_loss  # noqa: E402


def scores(model, source: torch.Tensor, target: torch.Tensor, chunk: int = 2048) -> dict[str, float]:
    total, pushed = 0.0, []
    for start in range(0, source.shape[0], chunk):
        x, y = source[start:start + chunk], target[start:start + chunk]
        total += float(w2gn_loss(model, x, y).detach().sum())
        with torch.no_grad():
            pushed.append(model.forward_map(x))
    return {"objective": total / source.shape[0],
            "w2_squared_estimate": w2_squared(source, torch.cat(pushed))}


def fresh(benchmark: str, samples: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """New samples of the same pair (a Gaussian pair is drawn from ``seed``: keep it)."""
    family, dim = parse_benchmark(benchmark)
    generator = torch.Generator().manual_seed(seed + 1000)
    if family == "gaussian":
        return GaussianPair.from_seed(dim, seed).sample(samples, generator)
    return Mix3toMix10(dim).sample(samples, generator)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir")
    parser.add_argument("benchmark")
    parser.add_argument("--samples", type=int, default=16384)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--with-start", action="store_true", help="score the Gaussian-map start too")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model, _, _ = load_transport(Path(args.run_dir) / "transport.safetensors")
    train_x, train_y, _ = make_problem(args.benchmark, args.samples, args.seed)
    fresh_x, fresh_y = fresh(args.benchmark, args.samples, args.seed)
    out = {"train": scores(model, train_x, train_y), "fresh": scores(model, fresh_x, fresh_y)}
    if args.with_start:  # the same architecture at its Gaussian-map start (before any step)
        start = TransportModel(model.config)
        start.start_gaussian(train_x, train_y)
        out["start_train"] = scores(start, train_x, train_y)
        out["start_fresh"] = scores(start, fresh_x, fresh_y)
    print(json.dumps({"run": args.run_dir, "benchmark": args.benchmark, **out}))


if __name__ == "__main__":
    main()
