"""``icnn rl``: train a continuous-control agent, plot learning curves, or record an episode.

``icnn rl`` trains, ``icnn rl plot`` draws learning curves, ``icnn rl video`` records a greedy episode.

Train:  ``icnn rl --env Pendulum-v1 --agent ddpg --steps 20000 --seed 0 --out runs/pend/ddpg/0``
Plot:   ``icnn rl plot runs/pend --out curves.png``
Video:  ``icnn rl video runs/pend/ddpg/0 --out pendulum.gif``

Imports here stay light (argparse only); torch, gymnasium and matplotlib load inside :func:`run`.
"""

from __future__ import annotations

import argparse

HELP = (
    "continuous-action RL (paper §6.4): train DDPG / NAF / ICNN-Q agents, plot learning curves, "
    "record a greedy episode"
)
DESCRIPTION = (
    "Train an agent on a gymnasium environment with a bounded Box action space and write "
    "DIR/metrics.json (max_test_return: max of the 10-point rolling mean of test returns, "
    "the paper's metric; final_test_return), DIR/curve.csv (step,test_return) and "
    "DIR/agent.safetensors. `icnn rl plot DIR... --out PNG` overlays learning curves "
    "(mean ± std over seeds per agent); `icnn rl video DIR --out GIF` renders a greedy "
    "episode of a trained agent. Agent hyper-parameters are overridden with "
    "--agent-options KEY=VALUE (an unknown key lists the valid ones)."
)

# must match icnn.tasks.rl.agent.AGENTS (kept here so that building the parser imports no torch)
AGENT_NAMES = ("ddpg", "naf", "icnn")


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value.strip()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Training flags (one per field of ``RunConfig``) and the ``plot`` and ``video`` sub-modes."""
    parser.add_argument("--env", default="Pendulum-v1", help="gymnasium environment id")
    parser.add_argument("--agent", default="ddpg", choices=AGENT_NAMES, help="which agent to train")
    parser.add_argument("--steps", type=int, default=100_000, help="environment steps of training")
    parser.add_argument("--seed", type=int, default=0, help="seed of every random generator")
    parser.add_argument(
        "--out", default=None,
        help="output directory (default: runs/rl/<env>/<agent>/seed<seed>)",
    )
    parser.add_argument(
        "--warmup", type=int, default=1000, help="steps of random actions before learning"
    )
    parser.add_argument("--batch-size", type=int, default=256, help="minibatch size per update")
    parser.add_argument(
        "--buffer-size", type=int, default=500_000, help="replay capacity (capped at --steps)"
    )
    parser.add_argument(
        "--updates-per-step", type=int, default=1, help="gradient updates per environment step"
    )
    parser.add_argument(
        "--test-every", type=int, default=None,
        help="steps between test points (default: steps // 100)",
    )
    parser.add_argument(
        "--test-episodes", type=int, default=1, help="greedy episodes averaged per test point"
    )
    parser.add_argument(
        "--max-episode-steps", type=int, default=None,
        help="time limit of training episodes (default: the environment's)",
    )
    parser.add_argument(
        "--reward-scale", type=float, default=1.0,
        help="scale of rewards stored for learning (test returns stay raw)",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--device", default="cpu", help="torch device of networks and buffer")
    parser.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=True,
        help="show a progress bar with episodes and returns",
    )
    parser.add_argument(
        "--agent-options", nargs="+", action="extend", type=_key_value, default=[],
        metavar="KEY=VALUE",
        help="override agent hyper-parameters, e.g. hidden=64,64 tau=0.005 noise_sigma=0.2",
    )

    modes = parser.add_subparsers(
        dest="mode", metavar="{plot,video}",
        help="optional sub-mode: `icnn rl plot DIR... --out PNG` overlays learning curves; "
             "`icnn rl video DIR --out GIF` records a greedy episode")
    plot = modes.add_parser(
        "plot",
        help="overlay learning curves of finished runs",
        description="Overlay learning curves: one panel per env, mean ± std over seeds per agent.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    plot.add_argument("runs", nargs="+", metavar="DIR", help="run directories, or folders of runs")
    plot.add_argument("--out", required=True, help="PNG file to write")
    plot.add_argument(
        "--smooth", type=int, default=10, help="trailing moving-average window (1: raw)"
    )
    plot.add_argument("--title", default=None, help="figure title")

    video = modes.add_parser(
        "video",
        help="render one greedy episode of a trained agent to an animated GIF",
        description="Load DIR/agent.safetensors (or a checkpoint file), run one greedy episode "
                    "with render_mode='rgb_array' and write the frames as a GIF. MuJoCo renders "
                    "headless through EGL (MUJOCO_GL=egl unless set).",
    )
    video.add_argument("run", metavar="DIR", help="run directory or agent checkpoint")
    video.add_argument("--out", required=True, help="GIF file to write")
    video.add_argument("--env", default=None, help="environment id (default: the checkpoint's)")
    video.add_argument("--seed", type=int, default=0, help="seed of the episode's start state (default: 0)")
    video.add_argument("--max-steps", type=int, default=None,
                       help="time limit of the episode (default: the environment's)")
    video.add_argument("--frame-every", type=int, default=1, help="keep every k-th frame (default: 1)")
    video.add_argument("--fps", type=float, default=30.0, help="frames per second of the GIF (default: 30)")


def run(args: argparse.Namespace) -> int:
    """Train (default), plot (``icnn rl plot``) or record (``icnn rl video``).

    Errors in the input raise ValueError; :func:`icnn.cli.main` reports them in one line.
    """
    mode = getattr(args, "mode", None)
    if mode == "plot":
        return _plot(args)
    if mode == "video":
        return _video(args)
    return _train(args)


def _train(args: argparse.Namespace) -> int:
    from icnn.tasks.rl.loop import RunConfig, train

    config = RunConfig(
        env=args.env,
        agent=args.agent,
        steps=args.steps,
        seed=args.seed,
        out=args.out,
        warmup=args.warmup,
        batch_size=args.batch_size,
        buffer_size=args.buffer_size,
        updates_per_step=args.updates_per_step,
        test_every=args.test_every,
        test_episodes=args.test_episodes,
        max_episode_steps=args.max_episode_steps,
        reward_scale=args.reward_scale,
        threads=args.threads,
        device=args.device,
        progress=args.progress,
        agent_options=dict(args.agent_options),
    )
    result = train(config)
    metrics = result.metrics
    print(
        f"{config.agent} on {config.env} (seed {config.seed}): "
        f"max_test_return {metrics['max_test_return']:.2f}, "
        f"final_test_return {metrics['final_test_return']:.2f}, "
        f"{metrics['env_steps_per_second']:.0f} env steps/s, wrote {result.out}"
    )
    return 0


def _plot(args: argparse.Namespace) -> int:
    from icnn.tasks.rl.plot import find_runs, plot_runs, summary_table

    out = plot_runs(args.runs, args.out, smooth=args.smooth, title=args.title)
    print(summary_table(find_runs(args.runs)))
    print(f"wrote {out}")
    return 0


def _video(args: argparse.Namespace) -> int:
    from icnn.tasks.rl.video import record_video

    out, episode = record_video(
        args.run, args.out, seed=args.seed, max_steps=args.max_steps,
        frame_every=args.frame_every, fps=args.fps, env_id=args.env,
    )
    print(f"return {episode.episode_return:.2f} over {episode.steps} steps, "
          f"{len(episode.frames)} frames; wrote {out}")
    return 0
