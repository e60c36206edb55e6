"""Summarise the RL grid: a markdown table (mean ± std over seeds) and the overlaid curves.

    python experiments/rl/make_table.py            # the current table: TABLE_RESULTS below
    python experiments/rl/make_table.py --results experiments/rl/results   # any other folders
    python experiments/rl/make_table.py --readme   # also rewrite the tables in README.md

Writes ``results/table.md`` (max and final test return per task and agent beside the paper's
numbers, plus env steps/s per agent) and ``results/curves.png`` (one panel per task, mean ± std
band per agent, through :func:`icnn.tasks.rl.plot.plot_runs`). Only finished runs (with a
``metrics.json``) are read; the seed count of every cell is printed, so a partial grid shows.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np

from icnn.tasks.rl.plot import find_runs, plot_runs, protocol

HERE = Path(__file__).resolve().parent
# the table's folders, one per protocol: Pendulum and Reacher at 10k steps and InvertedPendulum
# at 30k with 10 greedy episodes per test point; HalfCheetah at the paper's 100k with one
# episode per test point every 1000 steps (the paper's protocol). `results/` holds the first
# 10k grid (1 episode per point), kept for the record.
TABLE_RESULTS = ("results-10ep", "results-30k-10ep", "results-100k")
AGENTS = ("ddpg", "naf", "icnn")
ORDER = ("Pendulum-v1", "InvertedPendulum-v5", "Reacher-v5", "HalfCheetah-v5")

# the paper's table (v1 tasks, best of ~50 hyper-parameter settings x 1 seed; reference-notes §4.4):
# maxTestRew (printed) and finalTestRew (thesis tables), as (DDPG, NAF, ICNN)
PAPER_MAX = {
    "InvertedPendulum-v5": (1000.00, 1000.00, 1000.00),
    "Reacher-v5": (-6.10, -6.31, -5.08),
    "HalfCheetah-v5": (2909.77, 2575.16, 3822.99),
}
PAPER_FINAL = {
    "InvertedPendulum-v5": (1000.00, 1000.00, 1000.00),
    "Reacher-v5": (-9.05, -7.86, -6.33),
    "HalfCheetah-v5": (2909.77, 2269.25, 3822.99),
}


def cell(values: list[float]) -> str:
    if not values:
        return "—"
    array = np.asarray(values, dtype=float)
    return f"{array.mean():.1f} ± {array.std():.1f} (n={len(array)})"


def paper_cell(table: dict, env: str) -> str:
    if env not in table:
        return "—"
    return " / ".join(f"{value:g}" for value in table[env])


def make_table(results: list[Path]) -> dict[str, str]:
    """The markdown blocks: ``"returns"`` (max and final test return) and ``"speed"``."""
    runs = find_runs(results)
    # one row per task, budget and test protocol (greedy episodes per test point)
    groups: dict[tuple[tuple[str, int, int], str], list] = defaultdict(list)
    for run in runs:
        groups[((run.env, *protocol(run)), run.agent)].append(run)
    rank = {env: i for i, env in enumerate(ORDER)}
    envs = sorted({key for key, _ in groups}, key=lambda k: (rank.get(k[0], len(ORDER)), k))

    lines = []
    for key, title, paper in (
        ("max_test_return", "Max test return", PAPER_MAX),
        ("final_test_return", "Final test return", PAPER_FINAL),
    ):
        lines += [
            f"### {title} (10-point rolling mean of test returns; mean ± std over seeds)",
            "",
            "| Task | steps | test episodes per point | DDPG | NAF | ICNN-Q | ICNN-Q ≥ both? "
            "| paper (v1) DDPG / NAF / ICNN |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for env in envs:
            values = {
                agent: [run.metrics[key] for run in groups.get((env, agent), [])]
                for agent in AGENTS
            }
            means = {agent: np.mean(v) if v else None for agent, v in values.items()}
            if all(mean is not None for mean in means.values()):
                wins = "yes" if means["icnn"] >= max(means["ddpg"], means["naf"]) else "no"
                if len({len(v) for v in values.values()}) > 1:  # unequal seed counts
                    wins += " (partial: unequal seeds)"
            else:
                wins = "incomplete"
            lines.append(
                f"| {env[0]} | {env[1] // 1000}k | {env[2]} | "
                + " | ".join(cell(values[agent]) for agent in AGENTS)
                + f" | {wins} | {paper_cell(paper, env[0])} |"
            )
        lines.append("")
    returns, lines = "\n".join(lines), []

    lines += [
        "### Speed: environment steps per second (whole run incl. warm-up and tests; "
        "after warm-up in brackets), mean over seeds",
        "",
        "| Task | DDPG | NAF | ICNN-Q |",
        "|---|---|---|---|",
    ]
    for env in envs:
        cells = []
        for agent in AGENTS:
            group = groups.get((env, agent), [])
            if not group:
                cells.append("—")
                continue
            total = np.mean([run.metrics["env_steps_per_second"] for run in group])
            learning = np.mean([run.metrics["learning_steps_per_second"] for run in group])
            cells.append(f"{total:.0f} ({learning:.0f})")
        lines.append(f"| {env[0]} ({env[1] // 1000}k, {env[2]} ep) | " + " | ".join(cells) + " |")
    lines.append("")
    return {"returns": returns, "speed": "\n".join(lines)}


def replace_blocks(text: str, blocks: dict[str, str]) -> str:
    """``text`` with each ``<!-- make_table:NAME -->`` … ``<!-- /make_table:NAME -->`` block
    replaced by ``blocks[NAME]``; a missing marker is an error, not a silent skip."""
    for name, block in blocks.items():
        begin, end = f"<!-- make_table:{name} -->", f"<!-- /make_table:{name} -->"
        start, stop = text.find(begin), text.find(end)
        if start < 0 or stop < start:
            raise ValueError(f"expected the markers {begin} ... {end} in the README")
        text = text[: start + len(begin)] + "\n\n" + block.strip() + "\n\n" + text[stop:]
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", nargs="+", default=None,
                        help="folders of runs (default: TABLE_RESULTS)")
    parser.add_argument("--out", default=str(HERE / "results"),
                        help="where table.md and curves.png go")
    parser.add_argument("--readme", nargs="?", const=str(HERE / "README.md"), default=None,
                        help="also rewrite the marked table blocks of this README "
                             "(default when given without a path: experiments/rl/README.md)")
    args = parser.parse_args()
    results = ([Path(p) for p in args.results] if args.results
               else [HERE / name for name in TABLE_RESULTS])
    out = Path(args.out)
    blocks = make_table(results)
    table = "\n".join(blocks.values())
    (out / "table.md").write_text(table)
    if args.readme:
        readme = Path(args.readme)
        readme.write_text(replace_blocks(readme.read_text(), blocks))
        print(f"rewrote the table blocks of {readme}")
    plot_runs(results, out / "curves.png", smooth=3,
              title="Test return, mean ± std over seeds (budgets and test episodes: table.md)")
    print(table)
    print(f"wrote {out / 'table.md'} and {out / 'curves.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
