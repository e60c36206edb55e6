"""Learning-curve panels: one per task, split by protocol only when a task has several."""

from pathlib import Path

import numpy as np

from icnn.tasks.rl.plot import Run, panel_name


def run(env: str, steps: int, episodes: int | None = None) -> Run:
    metrics = {"steps": steps}
    if episodes is not None:
        metrics["run_config"] = {"test_episodes": episodes}
    return Run(path=Path("."), env=env, agent="icnn", seed=0, steps=np.array([steps]),
               test_returns=np.array([0.0]), metrics=metrics)


def test_panels_name_the_budget_only_when_a_task_has_several():
    runs = [run("HalfCheetah-v5", 10_000), run("HalfCheetah-v5", 100_000),
            run("Pendulum-v1", 10_000)]
    assert [panel_name(r, runs) for r in runs] == [
        "HalfCheetah-v5, 10k steps", "HalfCheetah-v5, 100k steps", "Pendulum-v1"]


def test_panels_name_the_test_episodes_when_they_differ():
    runs = [run("Reacher-v5", 10_000), run("Reacher-v5", 10_000, episodes=10),
            run("Reacher-v5", 30_000, episodes=10), run("Pendulum-v1", 10_000, episodes=1)]
    assert [panel_name(r, runs) for r in runs] == [
        "Reacher-v5, 10k steps, 1 test ep.", "Reacher-v5, 10k steps, 10 test ep.",
        "Reacher-v5, 30k steps, 10 test ep.", "Pendulum-v1"]
