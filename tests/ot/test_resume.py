"""A resumed run ends with the weights of an uninterrupted one (float64, bitwise)."""

import torch

from icnn.ot.fit import OTConfig, fit_transport
from icnn.ot.gaussian_pair import GaussianPair


def test_mm_resume_equals_uninterrupted(tmp_path):
    pair = GaussianPair.from_seed(2, 0)
    x, y = pair.sample(96, torch.Generator().manual_seed(1), dtype=torch.float64)
    # 3 steps an epoch with mm_inner=1: the g/f alternation crosses the epoch boundary
    settings = {"solver": "mm", "hidden": (8,), "batch_size": 32, "lr": 1e-2, "mm_inner": 1,
                "start": "identity", "eval_points": 16}
    whole = fit_transport(x, y, OTConfig(epochs=2, **settings), out_dir=tmp_path / "whole")
    fit_transport(x, y, OTConfig(epochs=1, **settings), out_dir=tmp_path / "part")
    resumed = fit_transport(x, y, OTConfig(epochs=2, **settings), out_dir=tmp_path / "part", resume=True)
    assert [h["epoch"] for h in resumed.history] == [1, 2]
    a, b = whole.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # and the run did train: the weights moved from the start
    fresh = fit_transport(x, y, OTConfig(epochs=1, **{**settings, "lr": 1e-12}))
    assert not torch.equal(fresh.model.state_dict()["f.passthrough.weight"], a["f.passthrough.weight"])
