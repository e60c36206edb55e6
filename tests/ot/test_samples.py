"""Sample files and sample tensors are checked at the door."""

import numpy as np
import pytest
import torch

from icnn.ot.samples import check_pair, check_samples, load_samples


def test_load_samples_reads_an_n_by_d_file(tmp_path):
    array = np.random.default_rng(0).normal(size=(20, 3))
    np.save(tmp_path / "a.npy", array)
    loaded = load_samples(tmp_path / "a.npy", "source", dtype=torch.float64)
    assert torch.equal(loaded, torch.from_numpy(array))


@pytest.mark.parametrize(("array", "message"), [
    (np.zeros(20), r"shape \(N, D\)"),
    (np.zeros((3, 2)), r"at least 8 source .*samples, got 3"),
    (np.array([[0.0, np.nan]] * 10), "NaN or inf in row 0"),
    (np.array([["a", "b"]] * 10), "numeric"),
])
def test_bad_sample_files_are_refused(tmp_path, array, message):
    np.save(tmp_path / "bad.npy", array)
    with pytest.raises(ValueError, match=message):
        load_samples(tmp_path / "bad.npy", "source")


def test_missing_and_pickled_files_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="expected a .npy file"):
        load_samples(tmp_path / "none.npy", "source")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}] * 10, dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="unreadable"):
        load_samples(tmp_path / "obj.npy", "source")


def test_pairs_must_share_their_dimension_and_contexts():
    x, y = torch.randn(10, 2), torch.randn(12, 3)
    with pytest.raises(ValueError, match="source D = 2 and target D = 3"):
        check_pair(x, y)
    y = torch.randn(12, 2)
    assert check_pair(x, y) == 2
    with pytest.raises(ValueError, match="for both the source and the target"):
        check_pair(x, y, torch.randn(10, 1), None)
    with pytest.raises(ValueError, match="one source context row per source sample"):
        check_pair(x, y, torch.randn(9, 1), torch.randn(12, 1))
    with pytest.raises(ValueError, match="contexts of one width"):
        check_pair(x, y, torch.randn(10, 1), torch.randn(12, 2))
    with pytest.raises(ValueError, match="floating-point"):
        check_samples(torch.ones(10, 2, dtype=torch.int64), "source")
