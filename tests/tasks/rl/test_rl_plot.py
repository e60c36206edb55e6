"""Learning-curve panels: one per task, split by budget only when a task has several."""

from pathlib import Path

import numpy as np

from icnn.tasks.rl.plot import Run, panel_name


def run(env: str, steps: int) -> Run:
    return Run(path=Path("."), env=env, agent="icnn", seed=0, steps=np.array([steps]),
               test_returns=np.array([0.0]), metrics={"steps": steps})


def test_panels_name_the_budget_only_when_a_task_has_several():
    runs = [run("HalfCheetah-v5", 10_000), run("HalfCheetah-v5", 100_000),
            run("Pendulum-v1", 10_000)]
    assert [panel_name(r, runs) for r in runs] == [
        "HalfCheetah-v5, 10k steps", "HalfCheetah-v5, 100k steps", "Pendulum-v1"]
