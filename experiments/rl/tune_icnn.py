"""ICNN-Q variants on tuning seeds the table never uses (100, 101): which defaults to carry.

Every variant is ICNN-Q with some ``--agent-options`` overrides; DDPG and NAF run on the same
tuning seeds as the yardstick. The table's seeds (0, 1, 2) are not touched here, so choosing
ICNN-Q's defaults from this sweep does not select on the reported runs.

    python experiments/rl/tune_icnn.py --env Reacher-v5 --variants ddpg naf softplus-l2 project-entropy1

Writes ``experiments/rl/tune-<env>-<steps//1000>k/<variant>/seed<s>/`` (run folders of
``icnn rl``) and ``table.md`` (every variant finished on those seeds: max/final test return,
mean over the tuning seeds), and prints it.
Resumable like run_table.py.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from jobs import Job, rl_command, run_jobs

HERE = Path(__file__).resolve().parent
TUNING_SEEDS = (100, 101)

# name -> (agent, agent options). Every ICNN-Q variant spells out the three knobs the sweep
# chose (constraint, l2, entropy), so a name means the same run whatever the current defaults:
# "softplus-l2" is the earlier default (softplus W^(z), L2 1e-4, no barrier) and
# "project-entropy1" the current one (projection, no L2, barrier w = 1).
KNOBS = {"softplus": "constraint=softplus", "project": "constraint=project"}


def icnn_variant(constraint: str, l2: float, entropy: float, *extra: str) -> tuple[str, tuple[str, ...]]:
    return "icnn", (KNOBS[constraint], f"l2={l2:g}", f"entropy={entropy:g}", *extra)


VARIANTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "ddpg": ("ddpg", ()),
    "naf": ("naf", ()),
    "softplus-l2": icnn_variant("softplus", 1e-4, 0),
    "softplus-l2-relu": icnn_variant("softplus", 1e-4, 0, "activation=relu"),
    "softplus-l2-entropy0.1": icnn_variant("softplus", 1e-4, 0.1),
    "softplus-l2-entropy1": icnn_variant("softplus", 1e-4, 1),
    "softplus": icnn_variant("softplus", 0, 0),
    "project-l2": icnn_variant("project", 1e-4, 0),
    "project-l2-initdefault": icnn_variant("project", 1e-4, 0, "init=default"),
    "project-l2-mu0.1": icnn_variant("project", 1e-4, 0, "strong_convexity=0.1"),
    "project-l2-entropy1": icnn_variant("project", 1e-4, 1),
    "project": icnn_variant("project", 0, 0),
    "project-double": icnn_variant("project", 0, 0, "double_q=true"),
    "project-entropy1": icnn_variant("project", 0, 1),
    "project-entropy0.3": icnn_variant("project", 0, 0.3),
    "project-entropy3": icnn_variant("project", 0, 3),
    "project-entropy1-inq": icnn_variant("project", 0, 1, "entropy_in_q=true"),
    "project-entropy1-lr3e-4": icnn_variant("project", 0, 1, "lr=0.0003"),
    "project-entropy1-tau0.003": icnn_variant("project", 0, 1, "tau=0.003"),
    "project-entropy1-quad64": icnn_variant("project", 0, 1, "quadratic_head=64"),
    "project-entropy1-warmL": icnn_variant("project", 0, 1, "warm_lipschitz=true"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", default="Reacher-v5")
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--test-every", type=int, default=500)
    parser.add_argument("--test-episodes", type=int, default=10)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--seeds", nargs="+", type=int, default=list(TUNING_SEEDS))
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    root = HERE / f"tune-{args.env}-{args.steps // 1000}k"
    jobs = []
    for name in args.variants:
        agent, options = VARIANTS[name]
        for seed in args.seeds:
            out = root / name / f"seed{seed}"
            extra = ("--agent-options", *options) if options else ()
            command = rl_command(
                args.env, agent, seed, out, steps=args.steps, test_every=args.test_every,
                warmup=1000, test_episodes=args.test_episodes, extra=extra,
            )
            log = root / "logs" / f"{name}-{seed}.log"
            jobs.append(Job(f"{args.env} {name} seed{seed}", command, out, log))
    failures = run_jobs(jobs, args.workers)

    lines = [
        f"{args.env}, {args.steps} steps, {args.test_episodes} test episodes per point, "
        f"seeds {', '.join(map(str, args.seeds))}", "",
        "| variant | agent options | max test return (mean) | final (mean) | max per seed |",
        "|---|---|---|---|---|",
    ]
    for name in VARIANTS:  # every variant run so far, in the order of VARIANTS
        files = [root / name / f"seed{s}" / "metrics.json" for s in args.seeds]
        if not all(f.is_file() for f in files):
            continue
        rows = [json.loads(f.read_text()) for f in files]
        best = [r["max_test_return"] for r in rows]
        final = [r["final_test_return"] for r in rows]
        agent, options = VARIANTS[name]
        lines.append(
            f"| {name} | {agent} {' '.join(options)} | {statistics.mean(best):.2f} | "
            f"{statistics.mean(final):.2f} | {', '.join(f'{b:.2f}' for b in best)} |"
        )
    (root / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    raise SystemExit(failures)


if __name__ == "__main__":
    main()
