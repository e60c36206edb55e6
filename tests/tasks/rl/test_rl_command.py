"""`icnn rl`: flags map one to one onto RunConfig; train and plot modes write their files."""

import argparse
import dataclasses
import json

from icnn.tasks.rl import command
from icnn.tasks.rl.agent import AGENTS
from icnn.tasks.rl.loop import RunConfig


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="icnn rl")
    command.add_arguments(parser)
    return parser


def test_every_run_config_field_has_a_flag_and_vice_versa():
    args = vars(parser().parse_args([]))
    flags = set(args) - {"mode"}
    assert flags == {field.name for field in dataclasses.fields(RunConfig)}
    defaults = RunConfig()
    for field in dataclasses.fields(RunConfig):
        expected = getattr(defaults, field.name)
        assert args[field.name] == (list(expected.items()) if field.name == "agent_options" else expected)


def test_agent_choices_match_the_registry():
    assert set(command.AGENT_NAMES) == set(AGENTS)


def test_train_then_plot_through_the_command(tmp_path, capsys):
    for seed in (0, 1):
        args = parser().parse_args(
            f"--env Pendulum-v1 --agent naf --steps 200 --seed {seed} --out {tmp_path}/naf/{seed} "
            "--warmup 50 --batch-size 16 --test-every 50 --no-progress "
            "--agent-options hidden=8 noise=gaussian".split()
        )
        assert command.run(args) == 0
    metrics = json.loads((tmp_path / "naf" / "1" / "metrics.json").read_text())
    assert metrics["agent_config"]["hidden"] == [8] and metrics["agent_config"]["noise"] == "gaussian"

    png = tmp_path / "curves.png"
    assert command.run(parser().parse_args(["plot", str(tmp_path / "naf"), "--out", str(png)])) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    assert "Pendulum-v1" in printed and "naf" in printed and "2" in printed


def test_a_bad_option_is_a_clear_error_not_a_traceback(tmp_path, capsys):
    from icnn import cli

    argv = ["rl", "--steps", "10", "--out", str(tmp_path), "--no-progress", "--agent-options",
            "lr=0.1"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "unknown option(s) ['lr'] for DDPGConfig" in err and "Traceback" not in err
