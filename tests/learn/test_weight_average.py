"""Weight averaging: the moving average itself (its use by the trainer: tests/learn/test_trainer.py)."""

import pytest
import torch

from icnn.learn import TrainerConfig
from icnn.learn.averaging import WeightAverage


def test_average_follows_the_warmed_up_recursion():
    layer = torch.nn.Linear(1, 1, bias=False).double()
    average = WeightAverage(layer, decay=0.5)
    expected = layer.weight.detach().clone()
    for t, value in enumerate([1.0, 2.0, 3.0, 4.0]):
        with torch.no_grad():
            layer.weight.fill_(value)
        average.update()
        decay = min(0.5, (1 + t) / (10 + t))
        expected = decay * expected + (1 - decay) * value
    torch.testing.assert_close(average.shadow["weight"], expected)
    with average.applied():
        torch.testing.assert_close(layer.weight.detach(), expected)
    assert float(layer.weight.detach()) == 4.0  # restored on exit


def test_decay_outside_zero_one_is_refused():
    with pytest.raises(ValueError, match=r"decay in \(0, 1\)"):
        WeightAverage(torch.nn.Linear(1, 1), 1.0)
    with pytest.raises(ValueError, match="average must be a decay"):
        TrainerConfig(average=0.0)
