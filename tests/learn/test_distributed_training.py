"""Data-parallel training (gloo, 2 CPU processes) equals one process on the same global batches."""

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import icnn
from icnn.learn import Trainer, TrainerConfig

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
