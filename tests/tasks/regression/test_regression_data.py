"""Data for ``icnn train``: files and built-in convex targets."""

import numpy as np
import pytest
import torch

from icnn.tasks.regression.data import TARGETS, builtin_data, load_file


def test_npz_with_context_round_trips(tmp_path):
    x, y, t = np.ones((4, 2)), np.zeros((4, 3)), np.arange(4.0)
    np.savez(tmp_path / "d.npz", x=x, y=y, target=t)
    lx, ly, lt = load_file(tmp_path / "d.npz")
    assert lx.shape == (4, 2) and ly.shape == (4, 3) and torch.equal(lt, torch.arange(4.0,
                                                                                     dtype=lt.dtype))


def test_npz_without_target_is_refused(tmp_path):
    np.savez(tmp_path / "d.npz", y=np.zeros((4, 3)))
    with pytest.raises(ValueError, match="missing \\['target'\\]"):
        load_file(tmp_path / "d.npz")


def test_csv_columns_are_split_by_prefix(tmp_path):
    (tmp_path / "d.csv").write_text("x0,y0,y1,target\n1,2,3,4\n5,6,7,8\n")
    x, y, t = load_file(tmp_path / "d.csv")
    assert x.tolist() == [[1.0], [5.0]] and y.tolist() == [[2.0, 3.0], [6.0, 7.0]]
    assert t.tolist() == [4.0, 8.0]


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_builtin_targets_are_convex_in_y(name):
    x, y, _ = builtin_data(name, 256, 3, 2, seed=0)
    other = torch.randn_like(y)
    mid = TARGETS[name](x, 0.5 * (y + other))
    assert bool((mid <= 0.5 * (TARGETS[name](x, y) + TARGETS[name](x, other)) + 1e-12).all())


def test_non_finite_values_in_a_file_are_refused(tmp_path):
    np.savez(tmp_path / "d.npz", y=np.zeros((4, 3)), target=np.array([0.0, np.nan, 1.0, 2.0]))
    with pytest.raises(ValueError, match="expected finite values, target has 1 NaN/inf"):
        load_file(tmp_path / "d.npz")


def test_a_ragged_or_non_numeric_csv_is_refused(tmp_path):
    (tmp_path / "r.csv").write_text("y0,target\n1,2\n3\n")
    with pytest.raises(ValueError, match="expected 2 values a row"):
        load_file(tmp_path / "r.csv")
    (tmp_path / "t.csv").write_text("y0,target\n1,abc\n")
    with pytest.raises(ValueError, match="expected numbers"):
        load_file(tmp_path / "t.csv")


@pytest.mark.parametrize(("n_samples", "y_dim", "x_dim"), [(0, 2, 0), (8, 0, 0), (8, 2, -1),
                                                           (8.0, 2, 0)])
def test_builtin_data_refuses_bad_sizes(n_samples, y_dim, x_dim):
    with pytest.raises(ValueError, match="expected .* an int >="):
        builtin_data("quadratic", n_samples, y_dim, x_dim, seed=0)
