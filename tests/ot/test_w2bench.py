"""The Mix3toMix10 sampler and ∇ψ re-implemented from SOURCE.md against the files' test.map."""

import pytest
import torch

from icnn.ot.baselines import LinearGaussianMap
from icnn.ot.metrics import transport_metrics
from icnn.ot.w2bench import Mix3toMix10, benchmark_path


@pytest.fixture(scope="module")
def bench_dir(data_dir):
    return data_dir / "w2bench"


@pytest.mark.parametrize("dim", [2, 8])
def test_grad_psi_reproduces_test_map(bench_dir, dim):
    bench = Mix3toMix10(dim, bench_dir, dtype=torch.float64)
    mapped = bench.transport(bench.test_x)
    torch.testing.assert_close(mapped, bench.test_map, atol=1e-4, rtol=0)


def test_grad_psi_is_the_gradient_of_a_convex_potential(bench_dir):
    bench = Mix3toMix10(2, bench_dir, dtype=torch.float64)
    x, y = bench.test_x[:64], bench.test_x[64:128]
    # monotone gradient: <∇ψ(x) − ∇ψ(y), x − y> >= μ·s‖x − y‖²
    gap = ((bench.transport(x) - bench.transport(y)) * (x - y)).sum(dim=1)
    assert bool((gap >= 0.9 * 2 * bench.mu * bench.scale * (x - y).square().sum(dim=1)).all())
    # finite differences of ψ agree with the autograd gradient
    h = 1e-6
    e = torch.eye(2, dtype=torch.float64)
    fd = torch.stack([(bench.potential(x + h * e[i]) - bench.potential(x - h * e[i])) / (2 * h)
                      for i in range(2)], dim=1)
    torch.testing.assert_close(fd, bench.transport(x), atol=1e-6, rtol=1e-6)


def test_sampler_matches_the_files_moments_and_linear_baseline(bench_dir):
    bench = Mix3toMix10(2, bench_dir)
    x, y = bench.sample(2**14, torch.Generator().manual_seed(0))
    # Var(P), Var(Q) as the metadata (estimated there on 2^14 samples)
    assert abs(float(x.var(dim=0).sum()) / bench.input_var - 1) < 0.05
    assert abs(float(y.var(dim=0).sum()) / bench.output_var - 1) < 0.05
    linear = LinearGaussianMap(x, y)
    scores = transport_metrics(linear, linear.inverse, bench.truth())
    assert abs(scores["l2_uvp_forward"] - 14.2) < 0.5  # SOURCE.md's linear reference at D = 2


def test_unknown_dimension_and_missing_folder_are_refused(tmp_path):
    with pytest.raises(ValueError, match="expected a Mix3toMix10 dimension"):
        benchmark_path(3)
    with pytest.raises(FileNotFoundError, match="expected the benchmark file"):
        benchmark_path(2, tmp_path)
