"""``icnn train``: every numeric flag is checked at the door; the model and data go to the rank's
device."""

import argparse

import pytest
import torch

from icnn.learn.distributed import DistContext
from icnn.tasks.regression import command


def parser() -> argparse.ArgumentParser:
    result = argparse.ArgumentParser(prog="icnn train")
    command.add_arguments(result)
    return result


@pytest.mark.parametrize(("flag", "value", "expected"), [
    ("--val-fraction", "-0.5", "in [0, 1)"), ("--val-fraction", "1", "in [0, 1)"),
    ("--val-fraction", "nan", "in [0, 1)"), ("--epochs", "0", "positive int"),
    ("--batch-size", "-8", "positive int"), ("--n-samples", "0", "positive int"),
    ("--y-dim", "0", "positive int"), ("--x-dim", "-1", "non-negative int"),
    ("--patience", "0", "positive int"), ("--checkpoint-every", "0", "positive int"),
    ("--lr", "0", "finite number > 0"), ("--lr", "inf", "finite number > 0"),
    ("--grad-clip", "-1", "finite number > 0"), ("--weight-decay", "-0.1", "finite number >= 0"),
    ("--strong-convexity", "nan", "finite number >= 0"), ("--hidden", "8,0", "positive ints"),
    ("--hidden", "8,x", "positive ints"), ("--hidden", ",", "positive ints"),
    ("--epochs", "2.5", "positive int"),
])
def test_an_out_of_range_flag_exits_2_naming_the_flag_and_the_expected_range(
        capsys, tmp_path, flag, value, expected):
    with pytest.raises(SystemExit) as exit_info:
        parser().parse_args(["--out", str(tmp_path), f"{flag}={value}"])
    assert exit_info.value.code == 2
    message = capsys.readouterr().err
    assert f"argument {flag}" in message and expected in message and value in message, message
    assert not list(tmp_path.iterdir())  # refused before anything is written


def test_in_range_flags_parse():
    args = parser().parse_args(["--out", "x", "--val-fraction", "0", "--hidden", "8, 4",
                                "--lr", "0.1", "--x-dim", "0", "--grad-clip", "2"])
    assert args.val_fraction == 0.0 and args.hidden == [8, 4] and args.x_dim == 0


def test_a_validation_share_that_leaves_no_training_data_is_refused(tmp_path):
    args = parser().parse_args(["--out", str(tmp_path), "--n-samples", "4", "--val-fraction",
                                "0.9", "--no-progress"])
    with pytest.raises(ValueError, match="leaves no training data"):
        command.run(args)


def test_a_validation_share_that_holds_out_no_row_is_refused(tmp_path):
    args = parser().parse_args(["--out", str(tmp_path), "--n-samples", "10", "--val-fraction",
                                "0.01", "--no-progress"])
    with pytest.raises(ValueError, match="holds out no row of 10"):
        command.run(args)


def test_a_single_process_trains_on_the_cpu():
    assert command.training_device(DistContext()) == torch.device("cpu")


def test_under_torchrun_with_cuda_each_rank_trains_on_its_own_gpu():
    context = DistContext(rank=1, world_size=2, device=torch.device("cuda", 1))
    assert command.training_device(context) == torch.device("cuda", 1)
    gloo = DistContext(rank=1, world_size=2)
    assert command.training_device(gloo) == torch.device("cpu")
