"""ICNN Q-learning (paper §6.4, Algorithm 3): ``−Q(s, a)`` is a PICNN convex in the action.

The negative action value is an energy ``E(s, a) = −Q(s, a)``, a :class:`icnn.PICNN` with the
state on its free path and the action on its convex path, so the greedy action is a convex
problem solved by :func:`icnn.argmin` over the action box ``[-1, 1]^act_dim``:

    a*(s) = argmin_{a ∈ [-1, 1]^dA} E(s, a) − w·H((a + 1)/2),

with the reference code's entropy barrier ``−w·H`` (``entropy = w``, default 1, the reference
code's objective; :mod:`icnn.tasks.rl.entropy`): it pulls the action inward, a soft version of
``argmax_a Q``. ``entropy = 0`` gives the plain ``argmin_a E(s, a)``, i.e. ``argmax_a Q``.

Read top to bottom: config, agent (act, update). Training (Algorithm 3):

    act:     a = clip(a*(s) + N, −1, 1)                     (N: Ornstein–Uhlenbeck noise)
    target:  y = r + γ (1 − terminated) · (−E'(s', a'*)),   a'* as a* with the target net E'
             (double_q: a'* chosen by the online net E, as Double DQN)
    loss:    ( Q(s, a) − y )²,  Q = −E                       (optionally y clipped to Q ± c)
    weights: W^(z) clamped at 0 after the step (constraint="project", the paper's), or kept
             non-negative by a softplus/exp parametrisation
    targets: θ' ← τ θ + (1 − τ) θ'

The target bootstraps from ``Q'(s', a'*)`` itself, without the barrier (Algorithm 3 with plain
gradient steps). ``entropy_in_q`` instead fits ``Q̃ = Q + w·H`` on both sides, ``Q̃(s, a) ≈ r +
γ max_a Q̃'(s', a)``, as the reference code did: the barrier then is part of the model of the
action value, not a regulariser of the policy. The inner
problem runs a fixed small budget (``act_iters``, ``target_iters`` iterations of accelerated
projected gradient), batched over the whole minibatch in one :func:`icnn.argmin` call; the
barrier and a small ``strong_convexity`` make the minimiser unique. The reference code ran up
to 1000 Adam steps on the same objective (reference-notes §2.5).

Whatever the solver returns, ``Q'(s', a'*) ≤ max_a Q'(s', a)`` (and likewise for ``Q̃'``): the
bootstrap value errs low, never high, so inexact inner solves (and the barrier) cannot cause
over-estimation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

import icnn
from icnn.nn.input_checks import validation
from icnn.nn.weight_decay import constrained_weight_penalty, decay_groups
from icnn.solvers.handle import check_compile_backend
from icnn.tasks.rl.agent import greedy_batch
from icnn.tasks.rl.buffer import Batch
from icnn.tasks.rl.entropy import EntropyRegularizedEnergy
from icnn.tasks.rl.networks import frozen_copy, soft_update_
from icnn.tasks.rl.noise import make_noise
from icnn.tasks.rl.quadratic_head import QuadraticHeadEnergy


@dataclass
class ICNNQConfig:
    """ICNN-Q hyper-parameters.

    Defaults: the paper (two 200-unit layers, weights projected
    after each step) and the reference code (``RL/src/agent.py``: γ 0.99, τ 0.01, Adam 1e-3,
    OU θ 0.15 σ 0.1; actions by ``argmin −Q − H``); the solver budget and ``strong_convexity``
    are ours (the paper gives no iteration counts). ``constraint``, ``l2`` (the reference: 1e-4)
    and ``entropy`` were chosen on tuning seeds no table uses (``experiments/rl/tune_icnn.py``).

    Run-level settings shared by every agent (batch size, warm-up, replay size, updates per
    step) live in :class:`icnn.tasks.rl.loop.RunConfig`.
    """

    hidden: tuple[int, ...] = (200, 200)  # widths of the PICNN's action (convex) and state paths
    activation: str = "softplus"  # convex non-decreasing activation of the action path
    x_activation: str = "relu"  # activation of the state path (free)
    constraint: str = "project"  # how W^(z) >= 0 is kept: "project" (clamp after each step, as
    # the paper), "softplus" or "exp"
    init: str = "icnn"  # "icnn" (Hoedt & Klambauer) or "default" (PyTorch's, made non-negative)
    strong_convexity: float = 1e-2  # μ: E(s, a) includes μ/2 ‖a‖², a unique argmin
    quadratic_head: tuple[int, ...] = ()  # non-empty: E adds a NAF-style diagonal quadratic
    # ½ Σ d_j(s)(a_j − m_j(s))² from a state network of these widths (icnn.tasks.rl.quadratic_head)
    entropy: float = 1.0  # w > 0: actions minimise E − w·H((a+1)/2), the reference code's
    # objective (w = 1); 0: the plain argmin of E
    gamma: float = 0.99  # discount
    tau: float = 0.01  # target-network averaging rate
    lr: float = 1e-3  # Adam step
    l2: float = 0.0  # L2 penalty on the weights (the effective W^(z), not their raw V); ref.: 1e-4
    double_q: bool = False  # True: a'* from the online net, valued by the target (Double DQN)
    entropy_in_q: bool = False  # True (needs entropy > 0): fit Q̃ = Q + w·H((a+1)/2) on both
    # sides of the TD error, as the reference code (Algorithm 3's Q̃); False: the barrier only
    # shapes the actions and the target is Q'(s', a'*)
    td_clip: float = 0.0  # > 0: clip the target to Q ± td_clip (the reference code: 1); 0: off
    solver: str = "pgd"  # icnn.argmin method for the inner problem
    act_iters: int = 5  # solver iterations per action (exploring: warm-started from the last)
    target_iters: int = 5  # solver iterations per minibatch target (from the box centre)
    solver_tol: float = 1e-4  # relative tolerance: examples stop early once certified
    warm_lipschitz: bool = False  # True (solver "pgd"): each solve starts from the step size L
    # the previous solve of its kind (acting / targets) ended with, instead of estimating it
    compile: str = ""  # a torch.compile backend ("inductor") for the acting and target solves:
    # pgd's whole-batch iterations run fused (a speed setting: rounding differs from eager, the
    # first solve per batch size compiles); "": eager, the reference
    noise: str = "ou"  # exploration noise: "ou" (Ornstein–Uhlenbeck) or "gaussian"
    noise_theta: float = 0.15  # OU mean reversion
    noise_sigma: float = 0.1  # OU / Gaussian scale, in the [-1, 1] action scale

    def __post_init__(self) -> None:
        for name in ("act_iters", "target_iters"):
            if getattr(self, name) < 1:
                raise ValueError(f"expected {name} >= 1, got {getattr(self, name)}")
        if self.compile:
            check_compile_backend("inductor" if self.compile is True else self.compile)
        if self.entropy < 0:
            raise ValueError(f"expected entropy >= 0 (0: plain argmin of E), got {self.entropy}")
        if self.td_clip < 0:
            raise ValueError(f"expected td_clip >= 0 (0: no clipping), got {self.td_clip}")
        if self.warm_lipschitz and self.solver != "pgd":
            raise ValueError(f"warm_lipschitz needs solver='pgd', got solver={self.solver!r}")
        if self.entropy_in_q and (self.entropy == 0 or self.double_q):
            raise ValueError(
                "entropy_in_q=True fits Q̃ = Q + w·H and needs entropy > 0 and double_q=False; "
                f"got entropy={self.entropy}, double_q={self.double_q}"
            )


ACTION_BOX = icnn.Box(-1.0, 1.0)


class ICNNQ:
    """The ICNN Q-learning agent; satisfies :class:`icnn.tasks.rl.agent.Agent`.

    ``energy`` is the PICNN ``E(s, a) = −Q(s, a)``, ``energy_target`` its Polyak-averaged copy.

    Args:
        obs_dim: observation size. act_dim: action size.
        config: hyper-parameters (defaults if ``None``).
        seed: seeds the exploration noise (network init uses torch's global generator).
        device: where the networks live.
    """

    name: ClassVar[str] = "icnn"
    Config: ClassVar[type] = ICNNQConfig

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        config: ICNNQConfig | None = None,
        *,
        seed: int = 0,
        device: str | torch.device = "cpu",
    ) -> None:
        self.config = config = config or ICNNQConfig()
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self.device = torch.device(device)

        energy = icnn.PICNN(
            obs_dim, act_dim, hidden=config.hidden, activation=config.activation,
            x_activation=config.x_activation, strong_convexity=config.strong_convexity,
            constraint=config.constraint, init=config.init,
        )
        if config.quadratic_head:
            energy = QuadraticHeadEnergy(energy, obs_dim, act_dim, config.quadratic_head)
        self.energy = energy.to(self.device)
        self.energy_target = frozen_copy(self.energy)
        # what the actions minimise: E itself, or E − w·H((a+1)/2) (entropy > 0)
        self.objective, self.objective_target = (
            (EntropyRegularizedEnergy(self.energy, config.entropy),
             EntropyRegularizedEnergy(self.energy_target, config.entropy))
            if config.entropy > 0 else (self.energy, self.energy_target)
        )
        # L2 on the effective W^(z), not on its raw softplus parameter (which would pull every
        # entry of W^(z) to log 2): see icnn.nn.weight_decay
        self.optimizer = torch.optim.Adam(decay_groups(self.energy, config.l2), lr=config.lr)
        self.noise = make_noise(
            config.noise, act_dim, theta=config.noise_theta, sigma=config.noise_sigma, seed=seed
        )
        self.previous_action: torch.Tensor | None = None  # warm start of the exploring stream
        # warm_lipschitz: the last accepted step size L of the acting and of the target solves
        self.lipschitz: dict[bool, float | None] = {False: None, True: None}
        # one reusable solver per objective and iteration budget (acting, targets): the setup
        # of icnn.argmin done once, the traits re-read only after a weight update
        self._solvers: dict[tuple[bool, int], icnn.Argmin] = {}

    def greedy_action(
        self, obs: torch.Tensor, *, target: bool = False, y0: torch.Tensor | None = None,
        max_iter: int | None = None,
    ) -> icnn.ArgminResult:
        """``argmin_a E(s, a)`` over ``[-1, 1]^act_dim`` for a batch.

        One call of a reusable :class:`icnn.Argmin` (the same result as :func:`icnn.argmin`, with
        the setup done once; with ``entropy = w > 0``: ``argmin_a E(s, a) − w·H((a+1)/2)``).

        Shape: ``obs: (batch, obs_dim)``, ``y0: (batch, act_dim)`` or None (the box centre)
        → result with ``y: (batch, act_dim)`` and ``value: (batch,)``, the objective at ``y``
        (``= −max_a Q`` when ``entropy = 0``).
        """
        config = self.config
        options = {}
        if config.warm_lipschitz and self.lipschitz[target] is not None:
            options["lipschitz"] = self.lipschitz[target]
        max_iter = max_iter if max_iter is not None else config.act_iters
        objective = self.objective_target if target else self.objective
        solver = self._solvers.get((target, max_iter))
        if solver is None or solver.model is not objective:
            solver = self._solvers[(target, max_iter)] = icnn.Argmin(
                objective, domain=ACTION_BOX, method=config.solver, tol=config.solver_tol,
                max_iter=max_iter, compile=config.compile or False,
            )
        result = solver(obs, y0=y0, **options)
        if config.warm_lipschitz:
            self.lipschitz[target] = result.info["lipschitz"].median().item()
        return result

    def q(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """``Q(s, a) = −E(s, a)``. Shape: ``(batch, obs_dim), (batch, act_dim)`` → ``(batch,)``."""
        with validation(False):  # shapes come from the replay buffer, checked once there
            return -self.energy(obs, action)

    def q_target(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """``Q'(s, a) = −E'(s, a)`` of the target network, ``(batch,)``."""
        with validation(False):
            return -self.energy_target(obs, action)

    @torch.no_grad()
    def act(self, obs: torch.Tensor, explore: bool) -> torch.Tensor:
        """``obs: (obs_dim,)`` → ``(act_dim,)`` in [-1, 1]: ``a*(s)``, plus noise if exploring.

        Exploring actions warm-start the solver from the previous step's ``a*`` (consecutive
        states are close); greedy (test) actions start from the centre, so they depend on
        ``obs`` and the weights only. Greedy actions also take a batch, ``(n, obs_dim)`` →
        ``(n, act_dim)``, solved as one batched argmin.
        """
        batch, single = greedy_batch(obs, self.obs_dim, explore)
        y0 = self.previous_action if explore else None
        action = self.greedy_action(batch.to(self.device, torch.float32), y0=y0).y
        if explore:
            self.previous_action = action
        action = action.cpu().squeeze(0) if single else action.cpu()
        if explore:
            action = action + self.noise.sample()
        return action.clamp(-1.0, 1.0)

    def reset_noise(self) -> None:
        """Restart the noise and the warm start (a new training episode)."""
        self.noise.reset()
        self.previous_action = None

    def update(self, batch: Batch) -> dict[str, float]:
        """One Q-learning step toward ``r + γ (1 − terminated) max_a Q'(s', a)``, then the target."""
        config = self.config
        solution = self.greedy_action(
            batch.next_obs, target=not config.double_q, max_iter=config.target_iters
        )
        with torch.no_grad():
            if config.double_q:  # Double DQN: the online net picks a'*, the target values it
                next_value = self.q_target(batch.next_obs, solution.y)
            else:
                next_value = -solution.value  # max_a Q̃'(s', a) = −min_a Ẽ'(s', a)
                if config.entropy > 0 and not config.entropy_in_q:
                    # the bootstrap is Q'(s', a'*), without the barrier
                    next_value = next_value + self.objective_target.barrier(solution.y)
            target = batch.reward + config.gamma * (1.0 - batch.terminated) * next_value

        q = self.q(batch.obs, batch.action)
        if config.entropy_in_q:  # Q̃(s, a) = Q(s, a) − w·(−H((a+1)/2))
            q = q - self.objective.barrier(batch.action)
        if config.td_clip > 0:
            detached = q.detach()
            target = torch.clamp(target, detached - config.td_clip, detached + config.td_clip)
        q_loss = F.mse_loss(q, target)
        loss = q_loss
        if config.l2 > 0:
            loss = q_loss + config.l2 * constrained_weight_penalty(self.energy)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.energy.project_()  # keeps W^(z) >= 0 when constraint="project"; else a no-op

        soft_update_(self.energy_target, self.energy, config.tau)
        return {
            "q_loss": q_loss.item(),
            "q": q.mean().item(),
            "target_converged": solution.converged.float().mean().item(),
        }

    def networks(self) -> dict[str, nn.Module]:
        """The agent's networks by name (what a checkpoint stores)."""
        return {"energy": self.energy, "energy_target": self.energy_target}
