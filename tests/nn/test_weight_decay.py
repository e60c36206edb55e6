"""Weight decay on constrained weights shrinks the effective W^(z) toward 0, not toward log 2."""

import math

import pytest
import torch

import icnn
from icnn.nn import constrained_weight_penalty, decay_groups, raw_constrained_parameters


def z_weights(model) -> list[torch.Tensor]:
    return [layer.weight for layer in model.z_layers]


@pytest.mark.parametrize("constraint", ["softplus", "exp"])
def test_penalty_is_half_the_squared_norm_of_the_effective_weights(constraint):
    torch.manual_seed(0)
    model = icnn.PICNN(3, 2, hidden=(5, 4), constraint=constraint).double()
    expected = 0.5 * sum(w.square().sum() for w in z_weights(model))
    torch.testing.assert_close(constrained_weight_penalty(model), expected)
    raw = raw_constrained_parameters(model)
    assert len(raw) == len(model.z_layers)
    # its gradient w.r.t. W is W itself: checked through the raw parameters in float64
    torch.autograd.gradcheck(
        lambda *tensors: _penalty_from_raw(model, constraint, tensors), tuple(raw)
    )


def _penalty_from_raw(model, constraint, tensors):
    transform = torch.nn.functional.softplus if constraint == "softplus" else torch.exp
    return 0.5 * sum(transform(t).square().sum() for t in tensors)


def test_projected_and_plain_models_have_no_raw_parameters_and_zero_penalty():
    model = icnn.FICNN(3, hidden=(4,), constraint="project")
    assert raw_constrained_parameters(model) == []
    assert constrained_weight_penalty(model).item() == 0.0
    groups = decay_groups(model, 1e-2)
    assert len(groups) == 1 and groups[0]["weight_decay"] == 1e-2
    assert len(groups[0]["params"]) == len(list(model.parameters()))


def test_groups_keep_raw_parameters_out_of_the_optimizer_decay():
    model = icnn.FICNN(3, hidden=(4, 4))
    plain, raw = decay_groups(model, 0.1)
    raw_ids = {id(p) for p in raw_constrained_parameters(model)}
    assert {id(p) for p in raw["params"]} == raw_ids and raw["weight_decay"] == 0.0
    assert not raw_ids & {id(p) for p in plain["params"]} and plain["weight_decay"] == 0.1
    assert len(plain["params"]) + len(raw["params"]) == len(list(model.parameters()))


def test_decay_alone_shrinks_w_toward_zero_where_optimizer_decay_pulled_it_to_log_2():
    # no data term: only the decay acts, for many steps
    torch.manual_seed(0)
    naive, fixed = icnn.FICNN(3, hidden=(6, 6)), icnn.FICNN(3, hidden=(6, 6))
    fixed.load_state_dict(naive.state_dict())
    initial = torch.cat([w.detach().flatten() for w in z_weights(fixed)])
    naive_opt = torch.optim.Adam(naive.parameters(), lr=0.05, weight_decay=0.1)
    fixed_opt = torch.optim.Adam(decay_groups(fixed, 0.1), lr=0.05)
    for _ in range(400):
        naive_opt.zero_grad()
        (0.0 * naive(torch.zeros(1, 3)).sum()).backward()
        naive_opt.step()
        fixed_opt.zero_grad()
        (0.1 * constrained_weight_penalty(fixed)).backward()
        fixed_opt.step()
    naive_w = torch.cat([w.detach().flatten() for w in z_weights(naive)])
    fixed_w = torch.cat([w.detach().flatten() for w in z_weights(fixed)])
    assert naive_w.mean().item() == pytest.approx(math.log(2.0), abs=0.05)  # the trap
    assert fixed_w.max() < 0.1 and fixed_w.mean() < 0.5 * initial.mean()  # L2 means toward 0
    assert (fixed_w >= 0).all()
