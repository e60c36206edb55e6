"""Continuous-action reinforcement learning (paper §6.4): agents with a shared loop (DDPG, NAF, ICNN-Q).

The agents share one replay buffer, one training loop, one evaluation and one set of outputs
(``metrics.json``, ``curve.csv``, a safetensors checkpoint), so that they compare fairly.
Run them with ``icnn rl --env Pendulum-v1 --agent ddpg --steps 20000 --seed 0 --out DIR``.
"""
