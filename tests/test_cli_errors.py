"""One error contract for every ``icnn`` subcommand: a bad input is one line on stderr, exit 2.

Each case passes argparse (a missing file, a number out of range) so that the error comes
from the command itself; :func:`icnn.cli.main` must turn it into ``icnn <command>: error: ...``.
"""

import pytest

from icnn import cli


def _bad_inputs(tmp_path):
    missing = str(tmp_path / "missing")
    out = str(tmp_path / "out")
    return {
        "demo": (["demo", "--data", missing, "--out", out], "bibtex"),
        "train": (["train", "--data", f"{missing}.csv", "--out", out, "--no-progress"], "missing"),
        "infer": (["infer", "--checkpoint", f"{missing}.safetensors", "--out", f"{out}.npz"],
                  "missing.safetensors"),
        "multilabel": (["multilabel", "--train", f"{missing}-train.arff", "--test",
                        f"{missing}-test.arff", "--labels", "3", "--out", out], "missing"),
        "completion": (["completion", "--images", f"{missing}.mat", "--out", out], "missing"),
        "rl": (["rl", "--steps", "-5", "--out", out], "steps"),
        "figure": (["figure", "synthetic", "--out", out, "--datasets", "nonsense"], "nonsense"),
        "benchmark": (["benchmark", "overhead"], "overhead.py"),
        "ot": (["ot", "--source", f"{missing}-a.npy", "--target", f"{missing}-b.npy", "--out", out],
               "missing-a.npy"),
    }


def test_every_subcommand_has_a_bad_input_case(tmp_path):
    assert set(_bad_inputs(tmp_path)) == set(cli.COMMANDS)


@pytest.mark.parametrize("command", list(cli.COMMANDS))
def test_bad_input_is_one_line_on_stderr_and_exit_2(command, tmp_path, capsys, monkeypatch):
    if command == "benchmark":  # as installed from a wheel: no benchmarks/ folder
        monkeypatch.setattr("icnn.tasks.benchmark_command.benchmarks_dir", lambda: tmp_path)
    argv, named = _bad_inputs(tmp_path)[command]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"icnn {command}: error: "), lines[0]
    assert named in lines[0], lines[0]


def test_a_bad_rl_video_checkpoint_is_one_line(tmp_path, capsys):
    (tmp_path / "agent.safetensors").write_bytes(b"\x00" * 3)
    code = cli.main(["rl", "video", str(tmp_path), "--out", str(tmp_path / "a.gif")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err


def test_a_corrupt_checkpoint_for_infer_is_one_line(tmp_path, capsys):
    path = tmp_path / "m.safetensors"
    path.write_bytes(b"\x06\x00\x00\x00\x00\x00\x00\x00[1, 2]")
    code = cli.main(["infer", "--checkpoint", str(path), "--out", str(tmp_path / "y.npz")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    assert err.strip().splitlines() == [err.strip()] and "JSON object" in err, err


def test_a_bug_keeps_its_traceback(monkeypatch):
    def broken(args):
        raise KeyError("a bug, not a user error")

    monkeypatch.setattr("icnn.tasks.infer_command.run", broken)
    with pytest.raises(KeyError):
        cli.main(["infer", "--checkpoint", "c", "--out", "o"])


@pytest.mark.parametrize("argv, words", [
    (["rl", "--env", "Foo-v9", "--steps", "10"], "gymnasium environment id"),
    (["rl", "--device", "cuda:7", "--steps", "10"], "device"),
    (["rl", "--reward-scale", "nan", "--steps", "10"], "reward_scale"),
])
def test_rl_user_errors_are_one_line(argv, words, capsys, tmp_path):
    from icnn import cli

    assert cli.main([*argv, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("icnn rl: error:") and words in err[0]
    assert not (tmp_path / "run" / "metrics.json").exists()
