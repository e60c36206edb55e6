"""Clean speed measurement: env steps per second of each agent, one thread, nothing else running.

    python experiments/rl/speed.py            # prints a markdown table

Each agent runs 3000 steps (1000 random warm-up, then 2000 learning steps: act, store, one
update on a batch of 64 as in the table) and one final test episode. Reported: learning steps/s
(warm-up and the test episode excluded) and greedy test steps/s (acting only).
"""

from __future__ import annotations

import tempfile

from icnn.tasks.rl.loop import RunConfig, train

ENVS = ("Pendulum-v1", "HalfCheetah-v5")
AGENTS = ("ddpg", "naf", "icnn")


def main() -> int:
    print("learning steps/s / greedy test steps/s")
    print("| Task | " + " | ".join(AGENTS) + " |")
    print("|---|" + "---|" * len(AGENTS))
    with tempfile.TemporaryDirectory() as out:
        for env in ENVS:
            cells = []
            for agent in AGENTS:
                metrics = train(RunConfig(
                    env=env, agent=agent, steps=3000, warmup=1000, batch_size=64,
                    test_every=3000, progress=False, out=f"{out}/{env}/{agent}",
                )).metrics
                learning_seconds = 2000 / metrics["learning_steps_per_second"]
                learning = 2000 / (learning_seconds - metrics["test_seconds"])
                test_steps = 1000 if env == "HalfCheetah-v5" else 200
                cells.append(f"{learning:.0f} / {test_steps / metrics['test_seconds']:.0f}")
            print(f"| {env} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
