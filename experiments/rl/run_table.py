"""Run the RL comparison grid (paper §6.4): tasks × agents × seeds, through ``icnn rl``.

Resumable (``jobs.py``): a run whose ``metrics.json`` exists is skipped (``metrics.json`` is
written last, atomically, so it marks a finished run), and so is a run still in progress (its
``logs/<run>.pid`` names a live process), so a second invocation never duplicates work.
Runs go to ``experiments/rl/results/<env>/<agent>/seed<k>/`` (``metrics.json``, ``curve.csv``;
the ``agent.safetensors`` checkpoint is gitignored), logs to ``experiments/rl/logs/``.

    python experiments/rl/run_table.py --workers 2           # the whole grid
    python experiments/rl/run_table.py --envs Pendulum-v1 --dry-run
    # the paper's HalfCheetah budget (100k steps, a test episode every 1000) in its own folder
    python experiments/rl/run_table.py --envs HalfCheetah-v5 --steps 100000 --test-every 1000 \
        --results experiments/rl/results-100k
    # ten greedy test episodes per point (run in lockstep, one batched action call per step)
    python experiments/rl/run_table.py --envs InvertedPendulum-v5 --steps 30000 \
        --test-episodes 10 --results experiments/rl/results-30k-10ep

Every agent of a task runs with the same budget, seeds and run settings (``TASKS`` below); only
the agent differs. Each run is one process, single-threaded, under ``nice``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from jobs import Job, rl_command, run_jobs

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
LOGS = HERE / "logs"

# env id -> run flags shared by every agent on that task (the budget of the table)
# (in the order they run: cheapest tests first; HalfCheetah's 10k is a tenth of the paper's 100k)
TASKS: dict[str, dict[str, int]] = {
    "Pendulum-v1": {"steps": 10_000, "test_every": 500, "warmup": 1000, "test_episodes": 1},
    "Reacher-v5": {"steps": 10_000, "test_every": 500, "warmup": 1000, "test_episodes": 1},
    "InvertedPendulum-v5": {"steps": 10_000, "test_every": 500, "warmup": 1000, "test_episodes": 1},
    "HalfCheetah-v5": {"steps": 10_000, "test_every": 500, "warmup": 1000, "test_episodes": 1},
}
AGENTS = ("ddpg", "naf", "icnn")
SEEDS = (0, 1, 2)
OVERRIDES: dict[str, int] = {}  # --steps / --test-every / --test-episodes: for every task and agent


def run_dir(env: str, agent: str, seed: int) -> Path:
    return RESULTS / env / agent / f"seed{seed}"


def command(env: str, agent: str, seed: int) -> tuple[str, ...]:
    task = {**TASKS[env], **OVERRIDES}
    return rl_command(
        env, agent, seed, run_dir(env, agent, seed), steps=task["steps"],
        test_every=task["test_every"], warmup=task["warmup"], test_episodes=task["test_episodes"],
    )


def job(env: str, agent: str, seed: int) -> Job:
    return Job(
        name=f"{env} {agent} seed{seed}", command=command(env, agent, seed),
        out=run_dir(env, agent, seed), log=LOGS / f"{env}_{agent}_seed{seed}.log",
    )


def main() -> int:
    global RESULTS, LOGS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="+", default=list(TASKS), choices=list(TASKS),
                        help="tasks to run, in order")
    parser.add_argument("--agents", nargs="+", default=list(AGENTS), choices=AGENTS,
                        help="agents to run")
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS), help="seeds")
    parser.add_argument("--workers", type=int, default=2, help="runs at once (one core each)")
    parser.add_argument("--steps", type=int, default=None,
                        help="override every task's budget (environment steps)")
    parser.add_argument("--test-every", type=int, default=None,
                        help="override every task's test interval")
    parser.add_argument("--test-episodes", type=int, default=None,
                        help="override every task's greedy episodes per test point")
    parser.add_argument("--results", default=str(RESULTS),
                        help="folder for the runs (keep budgets apart: one folder per budget)")
    parser.add_argument("--dry-run", action="store_true", help="print the pending commands only")
    args = parser.parse_args()
    RESULTS = Path(args.results).resolve()
    LOGS = RESULTS.parent / f"logs-{RESULTS.name}" if RESULTS != HERE / "results" else LOGS
    overrides = (
        ("steps", args.steps), ("test_every", args.test_every),
        ("test_episodes", args.test_episodes),
    )
    for key, value in overrides:
        if value is not None:
            OVERRIDES[key] = value

    jobs = [job(env, agent, seed) for env in args.envs for seed in args.seeds for agent in args.agents]
    if args.dry_run:
        pending = [each for each in jobs if each.pending()]
        print(f"{len(pending)} run(s) pending", flush=True)
        for each in pending:
            print(" ".join(each.command))
        return 0
    return 1 if run_jobs(jobs, args.workers) else 0


if __name__ == "__main__":
    raise SystemExit(main())
