"""Weight averaging: the moving average itself, its use by the trainer, exact resume, convexity."""

import json

import pytest
import torch

import icnn
from icnn.learn import Trainer, TrainerConfig
from icnn.learn.averaging import WeightAverage

D = torch.float64


def data(n: int = 40) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    y = torch.randn(n, 2, generator=generator, dtype=D)
    return y, y.square().sum(dim=1)


def mse(model, batch):
    y, target = batch
    return (model(y) - target - 0.01 * torch.randn_like(target)).square()


def config(**overrides) -> TrainerConfig:
    base = {"epochs": 4, "batch_size": 8, "lr": 0.05, "progress": False, "seed": 3,
            "average": 0.9}
    return TrainerConfig(**{**base, **overrides})


def model(seed: int = 0, **kwargs) -> icnn.FICNN:
    torch.manual_seed(seed)
    return icnn.FICNN(2, hidden=(8, 8), dtype=D, **kwargs)


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


def test_trainer_evaluates_and_returns_the_averaged_weights():
    net = model()
    seen = []
    trainer = Trainer(net, mse, config(), eval_fn=lambda m: seen.append(
        {k: v.clone() for k, v in m.state_dict().items()}) or {"val": 0.0})
    trainer.fit(data())
    final = net.state_dict()
    for name, value in trainer.average.shadow.items():
        assert torch.equal(final[name], value)  # the model ends on its average
        assert torch.equal(seen[-1][name], value)  # and was evaluated on it


@pytest.mark.parametrize("constraint", ["project", "softplus"])
def test_averaged_model_stays_convex(constraint):
    net = model(constraint=constraint)
    Trainer(net, mse, config(epochs=3, lr=0.5)).fit(data())
    report = icnn.check_convexity(net, n_pairs=256)
    assert report.ok, report


def test_resume_with_averaging_is_exact(tmp_path):
    reference = model()
    Trainer(reference, mse, config(), out_dir=tmp_path / "a").fit(data())
    calls: list[int] = []

    def crash_in_epoch_3(m):
        if len(calls) == 2:
            raise KeyboardInterrupt("simulated crash")
        calls.append(1)
        return {}

    with pytest.raises(KeyboardInterrupt):
        Trainer(model(), mse, config(), out_dir=tmp_path / "b", eval_fn=crash_in_epoch_3).fit(
            data())
    assert json.loads((tmp_path / "b" / "checkpoints" / "latest.json").read_text())["epoch"] == 2
    resumed = model(seed=99)
    Trainer(resumed, mse, config(), out_dir=tmp_path / "b").fit(data(), resume=True)
    for (name, expected), actual in zip(reference.state_dict().items(),
                                        resumed.state_dict().values(), strict=True):
        assert torch.equal(expected, actual), name


def test_resume_refuses_a_checkpoint_without_an_average(tmp_path):
    Trainer(model(), mse, config(epochs=1, average=None), out_dir=tmp_path).fit(data())
    with pytest.raises(ValueError, match="no weight average"):
        Trainer(model(), mse, config(epochs=2), out_dir=tmp_path).fit(data(), resume=True)
