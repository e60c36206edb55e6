"""Data-parallel training (gloo, 2 CPU processes): equals one process on the same global batches,
resumes exactly, stops every rank together, and reduces on the backend's device."""

import json
import os
import socket
import time
from datetime import timedelta
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import icnn
from icnn.learn import Trainer, TrainerConfig
from icnn.learn import distributed as ddp

D = torch.float64
N_EXAMPLES = 21  # the last global batch of 5 splits unevenly (3 + 2) across the processes


def data() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(5)
    y = torch.randn(N_EXAMPLES, 3, generator=generator, dtype=D)
    return y, (y - 0.5).abs().sum(dim=1)


def train(seed_for_init: int) -> icnn.FICNN:
    torch.manual_seed(seed_for_init)
    model = icnn.FICNN(3, hidden=(6, 6), dtype=D)
    config = TrainerConfig(epochs=3, batch_size=8, lr=0.02, grad_clip=1.0, schedule="cosine",
                           progress=False, seed=11)
    Trainer(model, lambda m, b: (m(b[0]) - b[1]).square().mean(), config).fit(data())
    return model


def _worker(rank: int, world_size: int, port: int, out_path: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world_size)
    try:
        # each rank starts from a different init: rank 0's weights must be broadcast
        model = train(seed_for_init=rank)
        torch.save(model.state_dict(), f"{out_path}.{rank}")
        dist.barrier()  # both ranks are done with the group before either tears it down
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.timeout(600)
def test_two_gloo_processes_match_a_single_process_run(tmp_path):
    out = str(tmp_path / "weights")
    os.environ.pop("WORLD_SIZE", None)
    mp.spawn(_worker, args=(2, _free_port(), out), nprocs=2, join=True)
    single = train(seed_for_init=0).state_dict()
    for rank in range(2):
        parallel = torch.load(f"{out}.{rank}", weights_only=True)
        for name, expected in single.items():
            torch.testing.assert_close(parallel[name], expected, rtol=0, atol=1e-6, msg=name)
    # the runs really moved the weights (the comparison is not between two initial states)
    torch.manual_seed(0)
    initial = icnn.FICNN(3, hidden=(6, 6), dtype=D).state_dict()
    assert not torch.allclose(initial["passthrough.weight"], single["passthrough.weight"])


# -- exact resume, lockstep failure and device choice under data parallelism -----------------------

class Interrupted(Exception):
    """A simulated crash, raised on every rank at the same point."""


def noisy_loss(model, batch):
    y, target = batch
    # draws from each rank's global RNG; the ranks draw different amounts (3 and 2 rows of the
    # last global batch of 5), so their RNG states differ and each must be saved and restored
    noise = 0.1 * torch.randn_like(target)
    return (model(y) - target - noise).square()


def _init_gloo(rank: int, world_size: int, port: int) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world_size, timeout=timedelta(seconds=20))


def resume_run(rank: int, out_dir: str) -> None:
    """Train 4 epochs; train again, crash in epoch 3 and resume from the epoch-2 checkpoint."""
    assert ddp.current_context().device == torch.device("cpu")  # gloo reduces CPU tensors
    config = TrainerConfig(epochs=4, batch_size=8, lr=0.02, schedule="cosine", progress=False,
                           seed=3)
    torch.manual_seed(0)
    reference = icnn.FICNN(3, hidden=(6, 6), dtype=D)
    Trainer(reference, noisy_loss, config, out_dir=f"{out_dir}/full").fit(data())

    def crash_in_epoch_3(model):
        if len(evaluations) == 2:
            raise Interrupted
        evaluations.append(1)
        return {}

    evaluations: list[int] = []
    torch.manual_seed(0)
    interrupted = icnn.FICNN(3, hidden=(6, 6), dtype=D)
    try:
        Trainer(interrupted, noisy_loss, config, out_dir=f"{out_dir}/parts",
                eval_fn=crash_in_epoch_3).fit(data())
    except Interrupted:
        pass
    torch.manual_seed(100 + rank)  # a different init on each rank: all comes from the files
    resumed = icnn.FICNN(3, hidden=(6, 6), dtype=D)
    history = Trainer(resumed, noisy_loss, config, out_dir=f"{out_dir}/parts").fit(
        data(), resume=True)
    torch.save({"reference": reference.state_dict(), "resumed": resumed.state_dict(),
                "epochs": [r["epoch"] for r in history]}, f"{out_dir}/weights.{rank}")


def nan_on_rank_1_run(rank: int, out_dir: str) -> None:
    """Train with a loss that is NaN on rank 1 only; write the error each rank saw."""
    def loss(model, batch):
        losses = (model(batch[0]) - batch[1]).square()
        return losses * float("nan") if dist.get_rank() == 1 else losses

    torch.manual_seed(0)
    model = icnn.FICNN(3, hidden=(6, 6), dtype=D)
    try:
        Trainer(model, loss, TrainerConfig(epochs=2, batch_size=8, progress=False)).fit(data())
        message = "finished"
    except FloatingPointError as error:
        message = str(error)
    Path(f"{out_dir}/message.{rank}").write_text(message)


def _scenarios_worker(rank: int, world_size: int, port: int, out_dir: str) -> None:
    # one process group for both scenarios: spawning processes is most of the cost
    _init_gloo(rank, world_size, port)
    try:
        resume_run(rank, out_dir)
        dist.barrier()
        nan_on_rank_1_run(rank, out_dir)
        dist.barrier()  # both ranks are done with the group before either tears it down
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def gloo_runs(tmp_path_factory) -> Path:
    """The folder where 2 gloo processes left the results of both scenarios; fails (not
    hangs) when a rank is still running after a minute."""
    out_dir = tmp_path_factory.mktemp("gloo_runs")
    os.environ.pop("WORLD_SIZE", None)
    context = mp.spawn(_scenarios_worker, args=(2, _free_port(), str(out_dir)), nprocs=2,
                       join=False)
    deadline = time.monotonic() + 60.0
    while not context.join(timeout=1.0):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail("a rank was still running after 60 s (hang)")
    return out_dir


@pytest.mark.timeout(120)
def test_two_gloo_processes_resume_exactly(gloo_runs):
    pointer = json.loads((gloo_runs / "parts" / "checkpoints" / "latest.json").read_text())
    assert pointer["epoch"] == 4
    torch.manual_seed(0)
    initial = icnn.FICNN(3, hidden=(6, 6), dtype=D).state_dict()
    for rank in range(2):
        saved = torch.load(gloo_runs / f"weights.{rank}", weights_only=True)
        assert saved["epochs"] == [1, 2, 3, 4]
        for name, expected in saved["reference"].items():
            assert torch.equal(saved["resumed"][name], expected), (rank, name)
    assert not torch.equal(initial["passthrough.weight"], saved["reference"]["passthrough.weight"])


@pytest.mark.timeout(120)
def test_a_non_finite_loss_on_one_rank_stops_every_rank_with_the_same_error(gloo_runs):
    messages = [(gloo_runs / f"message.{rank}").read_text() for rank in range(2)]
    assert messages[0] == messages[1], messages
    assert "non-finite training loss" in messages[0] and "rank 1" in messages[0], messages[0]


@pytest.mark.parametrize(("backend", "expected"), [
    ("gloo", torch.device("cpu")), ("GLOO", torch.device("cpu")), ("mpi", torch.device("cpu")),
    ("nccl", torch.device("cuda", 1)), ("cuda:nccl", torch.device("cuda", 1)),
    ("cpu:gloo,cuda:nccl", torch.device("cpu")),
])
def test_collectives_run_on_the_device_of_the_backend(backend, expected):
    assert ddp.collective_device(backend, cuda_index=1) == expected


def test_an_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="expected a torch.distributed backend"):
        ddp.collective_device("carrier-pigeon")


def test_a_model_off_the_ranks_device_is_refused():
    context = ddp.DistContext(rank=1, world_size=2, device=torch.device("cuda", 1))
    with pytest.raises(ValueError, match=r"expected .* on cuda:1.*got .*cpu"):
        ddp.check_module_device(icnn.FICNN(3, hidden=(4,)), context)
    # a single process is not checked: the model may live anywhere
    ddp.check_module_device(icnn.FICNN(3, hidden=(4,)), ddp.DistContext())


def test_single_process_helpers_are_identities_on_the_input_device():
    values = torch.tensor([1.0, 2.0])
    summed = ddp.all_reduce_sum(values, ddp.DistContext())
    assert torch.equal(summed, values) and summed is not values
    assert ddp.any_rank_flags(True, ddp.DistContext()) == [0]
    assert ddp.any_rank_flags(False, ddp.DistContext()) == []
