"""The ``icnn`` command: help texts and smoke runs of train, infer and figure."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from icnn import cli

MINE = tuple(cli.COMMANDS)  # every subcommand: listed, and every flag documented


def help_text(capsys, argv) -> str:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 0
    return capsys.readouterr().out


def test_top_level_help_lists_the_subcommands():
    result = subprocess.run([sys.executable, "-m", "icnn.cli", "--help"], capture_output=True,
                            text=True, check=True)
    for name in MINE:
        assert name in result.stdout


@pytest.mark.parametrize("name", MINE)
def test_every_flag_of_a_subcommand_has_a_help_text(capsys, name):
    parser = cli.build_parser()
    sub = parser._subparsers._group_actions[0].choices[name]
    for action in sub._actions:
        if action.dest != "help":
            assert action.help, f"{name} {action.option_strings or action.dest} has no help"
    text = help_text(capsys, [name, "--help"])
    for action in sub._actions:
        for flag in action.option_strings:
            assert flag in text


def test_train_then_infer_on_a_builtin_target(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["train", "--out", str(out), "--target", "quadratic", "--x-dim", "2",
                     "--y-dim", "2", "--n-samples", "64", "--epochs", "2", "--batch-size", "16",
                     "--hidden", "8,8", "--strong-convexity", "1.0", "--no-progress"]) == 0
    for name in ("metrics.json", "metrics.csv", "model.safetensors", "summary.json",
                 "best.safetensors", "checkpoints/latest.json"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"] == "picnn" and summary["epochs_run"] == 2
    assert "val_mse" in json.loads((out / "metrics.json").read_text())[-1]

    contexts = np.random.default_rng(0).standard_normal((5, 2)).astype(np.float32)
    np.save(tmp_path / "x.npy", contexts)
    solutions = tmp_path / "y.npz"
    assert cli.main(["infer", "--checkpoint", str(out / "model.safetensors"), "--inputs",
                     str(tmp_path / "x.npy"), "--out", str(solutions), "--lo", "-3",
                     "--hi", "3", "--method", "pgd"]) == 0
    with np.load(solutions) as result:
        assert result["y"].shape == (5, 2) and result["value"].shape == (5,)
        assert np.all(np.abs(result["y"]) <= 3)


def test_train_reads_a_csv_and_resumes(tmp_path):
    rng = np.random.default_rng(1)
    y = rng.standard_normal((40, 3))
    rows = ["y0,y1,y2,target"] + [",".join(map(str, [*r, float((r**2).sum())])) for r in y]
    (tmp_path / "data.csv").write_text("\n".join(rows))
    argv = ["train", "--data", str(tmp_path / "data.csv"), "--out", str(tmp_path / "run"),
            "--hidden", "8", "--batch-size", "8", "--no-progress"]
    assert cli.main([*argv, "--epochs", "1"]) == 0
    assert cli.main([*argv, "--epochs", "2", "--resume"]) == 0
    records = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert [r["epoch"] for r in records] == [1, 2]
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["model"] == "ficnn"
    # the resumed run ends on the weights of an uninterrupted two-epoch run
    uninterrupted = [a if a != str(tmp_path / "run") else str(tmp_path / "once") for a in argv]
    assert cli.main([*uninterrupted, "--epochs", "2"]) == 0
    resumed = load_file(str(tmp_path / "run" / "model.safetensors"))
    once = load_file(str(tmp_path / "once" / "model.safetensors"))
    assert resumed.keys() == once.keys()
    for name, expected in once.items():
        assert torch.equal(resumed[name], expected), name


def test_figure_smoke(tmp_path):
    out = tmp_path / "fig"
    assert cli.main(["figure", "synthetic", "--out", str(out), "--datasets", "moons",
                     "--hidden", "8,8", "--epochs", "2", "--steps", "3", "--grid", "8"]) == 0
    report = json.loads((out / "accuracy.json").read_text())
    assert set(report["accuracy"]) == {"ff", "ficnn", "picnn"}
    assert Path(out / "synthetic.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
