"""Learning curves of several runs: one panel per environment, one line per agent, mean ± std over seeds."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# the reference plot-all.py colours: DDPG red, NAF blue, ICNN green
AGENT_COLORS = {"ddpg": "tab:red", "naf": "tab:blue", "icnn": "tab:green"}
MAX_COLUMNS = 4  # panels per row; more tasks wrap onto further rows


@dataclass
class Run:
    """One finished run read back from its directory."""

    path: Path
    env: str
    agent: str
    seed: int
    steps: np.ndarray  # (points,)
    test_returns: np.ndarray  # (points,)
    metrics: dict


def read_run(directory: str | Path) -> Run:
    """Read ``metrics.json`` and ``curve.csv`` of one run directory."""
    directory = Path(directory)
    metrics = json.loads((directory / "metrics.json").read_text())
    with open(directory / "curve.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise ValueError(f"expected at least one test point in {directory / 'curve.csv'}, got none")
    return Run(
        path=directory,
        env=metrics["env"],
        agent=metrics["agent"],
        seed=int(metrics["seed"]),
        steps=np.array([int(row["step"]) for row in rows]),
        test_returns=np.array([float(row["test_return"]) for row in rows]),
        metrics=metrics,
    )


def find_runs(paths: Iterable[str | Path]) -> list[Run]:
    """Every run in ``paths``: a run directory itself, or any directory holding runs below it."""
    paths = [Path(path) for path in paths]
    runs: list[Run] = []
    for path in paths:
        if (path / "metrics.json").is_file():
            runs.append(read_run(path))
        elif path.is_dir():
            runs.extend(read_run(found.parent) for found in sorted(path.rglob("metrics.json")))
        else:
            raise ValueError(
                f"expected a run directory (with metrics.json) or a folder of runs, got {path}"
            )
    if not runs:
        raise ValueError(
            f"expected at least one run (a metrics.json) under {[str(p) for p in paths]}, found none"
        )
    return runs


def trailing_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last ``window`` points at each point (fewer at the start). Shape kept."""
    cumulative = np.concatenate([[0.0], np.cumsum(values, dtype=float)])
    index = np.arange(1, len(values) + 1)
    start = np.maximum(index - window, 0)
    return (cumulative[index] - cumulative[start]) / (index - start)


def aggregate(runs: Sequence[Run], smooth: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(steps, mean, std)`` over seeds, each run smoothed then interpolated on a common grid.

    The grid is the test steps of the run with the most points, inside the range all runs cover.
    """
    first = max(run.steps[0] for run in runs)
    last = min(run.steps[-1] for run in runs)
    densest = max(runs, key=lambda run: len(run.steps))
    grid = densest.steps[(densest.steps >= first) & (densest.steps <= last)]
    if len(grid) == 0:
        grid = np.array([last])
    curves = np.stack(
        [np.interp(grid, run.steps, trailing_mean(run.test_returns, smooth)) for run in runs]
    )
    return grid, curves.mean(axis=0), curves.std(axis=0)


def plot_runs(
    paths: Iterable[str | Path], out: str | Path, *, smooth: int = 10, title: str | None = None
) -> Path:
    """Overlay learning curves (mean ± std band over seeds per agent) and save a PNG at ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if smooth < 1:
        raise ValueError(f"expected smooth >= 1, got {smooth}")
    runs = find_runs(paths)
    by_env: dict[str, dict[str, list[Run]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        by_env[panel_name(run, runs)][run.agent].append(run)

    columns = min(MAX_COLUMNS, len(by_env))
    rows = -(-len(by_env) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(5.5 * columns, 4 * rows), squeeze=False)
    for axis in axes.flat[len(by_env):]:
        axis.set_visible(False)
    for axis, (env, by_agent) in zip(axes.flat, sorted(by_env.items()), strict=False):
        for agent, agent_runs in sorted(by_agent.items()):
            steps, mean, std = aggregate(agent_runs, smooth)
            color = AGENT_COLORS.get(agent)
            axis.plot(steps, mean, color=color, label=f"{agent} (n={len(agent_runs)})")
            axis.fill_between(steps, mean - std, mean + std, color=color, alpha=0.2, linewidth=0)
        axis.set_title(env)
        axis.set_xlabel("environment steps")
        axis.set_ylabel(f"test return ({smooth}-point trailing mean)" if smooth > 1 else "test return")
        axis.grid(alpha=0.3)
        axis.legend()
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=120)
    plt.close(figure)
    return out


def protocol(run: Run) -> tuple[int, int]:
    """``(training steps, greedy test episodes per point)`` of a run (old runs: 1 episode)."""
    return run.metrics["steps"], run.metrics.get("run_config", {}).get("test_episodes", 1)


def panel_name(run: Run, runs: Sequence[Run]) -> str:
    """The task's label: ``run.env``, with its budget when needed.

    ``run.env``, plus its budget (and test episodes) when ``runs`` hold that task under
    several protocols.
    """
    protocols = {protocol(other) for other in runs if other.env == run.env}
    if len(protocols) == 1:
        return run.env
    steps, episodes = protocol(run)
    if len({episodes for _, episodes in protocols}) == 1:
        return f"{run.env}, {steps // 1000}k steps"
    return f"{run.env}, {steps // 1000}k steps, {episodes} test ep."


def summary_table(runs: Sequence[Run]) -> str:
    """One line per (env, agent): seeds and max/final test return, mean ± std over seeds."""
    groups: dict[tuple[str, str], list[Run]] = defaultdict(list)
    for run in runs:
        groups[(run.env, run.agent)].append(run)
    lines = [f"{'env':<24}{'agent':<8}{'seeds':>6}{'max_test_return':>24}{'final_test_return':>24}"]
    for (env, agent), group in sorted(groups.items()):
        best = np.array([run.metrics["max_test_return"] for run in group])
        final = np.array([run.metrics["final_test_return"] for run in group])
        lines.append(
            f"{env:<24}{agent:<8}{len(group):>6}"
            f"{f'{best.mean():.2f} ± {best.std():.2f}':>24}{f'{final.mean():.2f} ± {final.std():.2f}':>24}"
        )
    return "\n".join(lines)
