"""The trainer: exact resume, projection, early stopping, metrics files, safe checkpoints,
weight averaging."""

import json
import random

import numpy as np
import pytest
import torch
from torch import nn

import icnn
from icnn.learn import Trainer, TrainerConfig, seed_everything
from icnn.nn import project_constrained_

D = torch.float64


def regression_data(n: int = 40) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    y = torch.randn(n, 2, generator=generator, dtype=D)
    return y, y.square().sum(dim=1)


def noisy_mse(model, batch):
    y, target = batch
    # the noise draws from the global RNG, so resume is exact only if the RNG state is restored
    noise = 0.01 * torch.randn_like(target)
    return (model(y) - target - noise).square()


def config(**overrides) -> TrainerConfig:
    base = {"epochs": 4, "batch_size": 8, "lr": 0.01, "schedule": "cosine", "grad_clip": 5.0,
            "progress": False, "seed": 7}
    return TrainerConfig(**{**base, **overrides})


def fresh_model(seed: int = 0, **kwargs) -> icnn.FICNN:
    torch.manual_seed(seed)
    return icnn.FICNN(2, hidden=(8, 8), dtype=D, **kwargs)


@pytest.mark.parametrize("average", [None, 0.9])
def test_interrupted_and_resumed_run_ends_with_identical_weights(tmp_path, average):
    reference = fresh_model()
    Trainer(reference, noisy_mse, config(average=average), out_dir=tmp_path / "a").fit(
        regression_data())

    def crash_in_epoch_3(model):
        if len(calls) == 2:
            raise KeyboardInterrupt("simulated crash during epoch 3")
        calls.append(1)
        return {"val": 0.0}

    calls: list[int] = []
    interrupted = fresh_model()
    with pytest.raises(KeyboardInterrupt):
        Trainer(interrupted, noisy_mse, config(average=average), out_dir=tmp_path / "b",
                eval_fn=crash_in_epoch_3).fit(regression_data())
    pointer = json.loads((tmp_path / "b" / "checkpoints" / "latest.json").read_text())
    assert pointer["epoch"] == 2

    resumed = fresh_model(seed=123)  # different init: everything must come from the checkpoint
    trainer = Trainer(resumed, noisy_mse, config(average=average), out_dir=tmp_path / "b")
    history = trainer.fit(regression_data(), resume=True)
    assert [r["epoch"] for r in history] == [1, 2, 3, 4]
    for (name, expected), actual in zip(reference.state_dict().items(),
                                        resumed.state_dict().values(), strict=True):
        assert torch.equal(expected, actual), name


def test_resume_refuses_a_changed_batch_size(tmp_path):
    Trainer(fresh_model(), noisy_mse, config(epochs=1), out_dir=tmp_path).fit(regression_data())
    with pytest.raises(ValueError, match="batch_size"):
        Trainer(fresh_model(), noisy_mse, config(batch_size=4), out_dir=tmp_path).fit(
            regression_data(), resume=True)


def test_trainer_state_loads_without_executing_code(tmp_path):
    Trainer(fresh_model(), noisy_mse, config(epochs=1), out_dir=tmp_path).fit(regression_data())
    state = torch.load(tmp_path / "checkpoints" / "state-0001.pt", weights_only=True)
    assert state["epoch"] == 1 and "optimizer" in state and "rng" in state
    assert icnn.checkpoint.load(tmp_path / "checkpoints" / "model-0001.safetensors")


def test_training_reduces_the_loss_and_writes_metrics(tmp_path):
    model = fresh_model()
    history = Trainer(model, noisy_mse, config(epochs=6, lr=0.03), out_dir=tmp_path).fit(
        regression_data())
    assert history[-1]["train_loss"] < 0.5 * history[0]["train_loss"]
    records = json.loads((tmp_path / "metrics.json").read_text())
    assert [r["epoch"] for r in records] == [1, 2, 3, 4, 5, 6]
    header = (tmp_path / "metrics.csv").read_text().splitlines()[0].split(",")
    assert header[:3] == ["epoch", "train_loss", "lr"]
    assert (tmp_path / "best.safetensors").is_file()
    assert not list(tmp_path.rglob("*.tmp"))  # atomic writes leave no temporaries behind


def test_project_constraint_is_applied_after_every_step():
    model = fresh_model(constraint="project")

    def push_weights_negative(model, batch):
        return sum(layer.weight.sum() for _, layer in model.constrained_layers()) + 0 * model(
            batch[0]).sum()

    Trainer(model, push_weights_negative, config(epochs=1, lr=1.0, optimizer="sgd",
                                                 grad_clip=None)).fit(regression_data())
    for _, layer in model.constrained_layers():
        assert bool((layer.raw_weight >= 0).all())


def test_early_stopping_after_patience_evaluations_without_improvement(tmp_path):
    scores = iter([1.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    trainer = Trainer(fresh_model(), noisy_mse,
                      config(epochs=7, monitor="val", patience=2), out_dir=tmp_path,
                      eval_fn=lambda model: {"val": next(scores)})
    history = trainer.fit(regression_data())
    assert len(history) == 4  # best at epoch 2, then two stale evaluations
    assert icnn.checkpoint.load_metadata(tmp_path / "best.safetensors")["epoch"] == 2


def test_config_rejects_unknown_optimizer():
    with pytest.raises(ValueError, match="optimizer must be one of"):
        TrainerConfig(optimizer="lion")


def test_averaging_trainer_evaluates_and_returns_the_averaged_weights():
    net = fresh_model()
    seen = []
    trainer = Trainer(net, noisy_mse, config(average=0.9), eval_fn=lambda m: seen.append(
        {k: v.clone() for k, v in m.state_dict().items()}) or {"val": 0.0})
    trainer.fit(regression_data())
    final = net.state_dict()
    for name, value in trainer.average.shadow.items():
        assert torch.equal(final[name], value)  # the model ends on its average
        assert torch.equal(seen[-1][name], value)  # and was evaluated on it


@pytest.mark.parametrize("constraint", ["project", "softplus"])
def test_averaged_model_stays_convex(constraint):
    net = fresh_model(constraint=constraint)
    Trainer(net, noisy_mse, config(average=0.9, epochs=3, lr=0.5, grad_clip=None)).fit(
        regression_data())
    report = icnn.check_convexity(net, n_pairs=256)
    assert report.ok, report


def test_resume_refuses_a_checkpoint_without_an_average(tmp_path):
    Trainer(fresh_model(), noisy_mse, config(epochs=1), out_dir=tmp_path).fit(regression_data())
    with pytest.raises(ValueError, match="no weight average"):
        Trainer(fresh_model(), noisy_mse, config(average=0.9, epochs=1), out_dir=tmp_path).fit(
            regression_data(), resume=True)


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
def test_weight_decay_shrinks_the_constrained_weights_toward_zero(optimizer):
    # a loss that ignores the weights: only the decay moves them. The optimiser's own decay on
    # the raw softplus parameter would pull every W^(z) entry up to log 2 instead.
    model = fresh_model()

    def no_signal(model, batch):
        return 0.0 * model(batch[0])

    before = [layer.weight.detach().clone() for _, layer in model.constrained_layers()]
    Trainer(model, no_signal, config(epochs=20, lr=0.05, weight_decay=0.5, optimizer=optimizer,
                                     schedule="constant")).fit(regression_data())
    for (_, layer), start in zip(model.constrained_layers(), before, strict=True):
        assert bool((layer.weight <= start + 1e-12).all())
        assert layer.weight.mean() < 0.9 * start.mean()


class Wrapped(nn.Module):
    """A user's module holding a project-constrained FICNN: it has no ``config`` of its own."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.energy = icnn.FICNN(2, hidden=(8, 8), constraint="project", dtype=D)
        self.scale = nn.Parameter(torch.ones((), dtype=D))

    def forward(self, y):
        return self.scale * self.energy(y)


def test_a_wrapped_project_constrained_model_stays_convex():
    model = Wrapped()

    def push_weights_negative(model, batch):
        return sum(layer.weight.sum() for _, layer in model.energy.constrained_layers()) + 0 * (
            model(batch[0]).sum())

    Trainer(model, push_weights_negative, config(epochs=1, lr=1.0, optimizer="sgd",
                                                 grad_clip=None)).fit(regression_data())
    minima = [float(layer.weight.detach().min()) for _, layer in model.energy.constrained_layers()]
    assert min(minima) >= 0.0, minima
    assert min(minima) == 0.0  # the step did push entries below 0: the projection clamped them


def test_project_constrained_reaches_layers_anywhere_and_leaves_parametrised_ones_alone():
    model = Wrapped()
    with torch.no_grad():
        for _, layer in model.energy.constrained_layers():
            layer.weight.sub_(1.0)
    soft = fresh_model()  # softplus: project_ must not touch the raw parameter
    raw_before = [layer.raw_weight.detach().clone() for _, layer in soft.constrained_layers()]
    assert project_constrained_(nn.Sequential(model, soft))
    for _, layer in model.energy.constrained_layers():
        assert bool((layer.weight >= 0).all())
    for (_, layer), before in zip(soft.constrained_layers(), raw_before, strict=True):
        assert torch.equal(layer.raw_weight, before)


@pytest.mark.parametrize("escape", ["absolute", "dotdot", "symlink", "subfolder"])
def test_resume_refuses_a_latest_json_naming_a_file_outside_its_folder(tmp_path, escape):
    run = tmp_path / "run"
    Trainer(fresh_model(), noisy_mse, config(epochs=1), out_dir=run).fit(regression_data())
    folder = run / "checkpoints"
    outside = tmp_path / "elsewhere.safetensors"
    outside.write_bytes((folder / "model-0001.safetensors").read_bytes())
    pointer = json.loads((folder / "latest.json").read_text())
    if escape == "absolute":
        pointer["model"] = str(outside)
    elif escape == "dotdot":
        pointer["model"] = "../../elsewhere.safetensors"
    elif escape == "symlink":
        (folder / "link.safetensors").symlink_to(outside)
        pointer["model"] = "link.safetensors"
    else:
        (folder / "sub").mkdir()
        pointer["state"] = "sub/state-0001.pt"
    (folder / "latest.json").write_text(json.dumps(pointer))
    with pytest.raises(ValueError, match="latest.json.*expected a file name inside"):
        Trainer(fresh_model(), noisy_mse, config(epochs=2), out_dir=run).fit(
            regression_data(), resume=True)


def test_resume_refuses_a_malformed_latest_json(tmp_path):
    Trainer(fresh_model(), noisy_mse, config(epochs=1), out_dir=tmp_path).fit(regression_data())
    (tmp_path / "checkpoints" / "latest.json").write_text('{"epoch": 1, "model": 3}')
    with pytest.raises(ValueError, match="latest.json"):
        Trainer(fresh_model(), noisy_mse, config(epochs=2), out_dir=tmp_path).fit(
            regression_data(), resume=True)


@pytest.mark.parametrize(("change", "key"), [
    ({"lr": 0.02}, "lr"), ({"weight_decay": 0.1}, "weight_decay"), ({"grad_clip": 1.0}, "grad_clip"),
    ({"epochs": 6}, "epochs"),  # the cosine schedule is laid out over the planned epochs
])
def test_resume_refuses_a_changed_setting_the_checkpoint_would_silently_override(
        tmp_path, change, key):
    Trainer(fresh_model(), noisy_mse, config(epochs=1), out_dir=tmp_path).fit(regression_data())
    with pytest.raises(ValueError, match=f"cannot resume: checkpoint has {key}="):
        Trainer(fresh_model(), noisy_mse, config(**{"epochs": 1, **change}),
                out_dir=tmp_path).fit(regression_data(), resume=True)


def test_resume_may_extend_a_constant_schedule(tmp_path):
    reference = fresh_model()
    Trainer(reference, noisy_mse, config(epochs=3, schedule="constant"), out_dir=tmp_path / "a"
            ).fit(regression_data())
    resumed = fresh_model()
    Trainer(resumed, noisy_mse, config(epochs=1, schedule="constant"), out_dir=tmp_path / "b"
            ).fit(regression_data())
    Trainer(resumed, noisy_mse, config(epochs=3, schedule="constant"), out_dir=tmp_path / "b"
            ).fit(regression_data(), resume=True)
    for name, expected in reference.state_dict().items():
        assert torch.equal(resumed.state_dict()[name], expected), name


@pytest.mark.parametrize(("field", "value"), [
    ("weight_decay", -0.1), ("weight_decay", float("nan")), ("lr", float("inf")),
    ("momentum", -1.0), ("gamma", 0.0), ("min_delta", -1.0), ("seed", 1.5),
])
def test_config_rejects_out_of_range_numbers(field, value):
    with pytest.raises(ValueError, match=field):
        TrainerConfig(**{field: value})


def test_one_seed_everything_for_the_trainer_and_the_rl_loop():
    from icnn.tasks.rl import loop

    assert loop.seed_everything is seed_everything is icnn.learn.trainer.seed_everything
    seed_everything(5)
    first = (torch.rand(3), np.random.rand(3), random.random())  # noqa: NPY002
    seed_everything(5)
    second = (torch.rand(3), np.random.rand(3), random.random())  # noqa: NPY002
    assert torch.equal(first[0], second[0]) and np.array_equal(first[1], second[1])
    assert first[2] == second[2]
    with pytest.raises(TypeError, match="expected an int seed"):
        seed_everything(1.5)
