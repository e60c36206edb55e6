"""``icnn train``: fit an FICNN or PICNN to ``target = f(x, y)`` by mean squared error."""

from __future__ import annotations

import argparse
import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from ...learn import DistContext

HELP = "fit an FICNN/PICNN to (x, y, target) data from .npz/.csv or to a built-in convex target"
DESCRIPTION = (
    "Fit an input convex network f(x, y) (convex in y) to targets by mean squared error. Data "
    "come from --data (.npz with arrays y, target and optionally x; or .csv with columns y*, "
    "target and optionally x*) or from a built-in convex --target sampled at random points. "
    "Writes DIR/metrics.json and DIR/metrics.csv (one row per epoch), DIR/model.safetensors "
    "(final weights, icnn.save), DIR/best.safetensors (lowest monitored metric), "
    "DIR/checkpoints/ (resumable) and DIR/summary.json. Runs data-parallel under "
    "torchrun --nproc_per_node=N (each process on cuda:LOCAL_RANK when CUDA is present, "
    "else on the CPU)."
)


def _positive_int(text: str) -> int:
    return _int_at_least(text, 1, "a positive int")


def _non_negative_int(text: str) -> int:
    return _int_at_least(text, 0, "a non-negative int")


def _int_at_least(text: str, low: int, expected: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def _seed(text: str) -> int:
    value = _int_at_least(text, 0, "an int in [0, 2**32)")
    if value >= 2**32:
        raise argparse.ArgumentTypeError(f"expected an int in [0, 2**32), got {text!r}")
    return value


def _float_where(text: str, accept, expected: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if not (math.isfinite(value) and accept(value)):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    return _float_where(text, lambda v: v > 0, "a finite number > 0")


def _non_negative_float(text: str) -> float:
    return _float_where(text, lambda v: v >= 0, "a finite number >= 0")


def _fraction(text: str) -> float:
    return _float_where(text, lambda v: 0 <= v < 1, "a share in [0, 1)")


def _widths(text: str) -> list[int]:
    expected = "comma-separated positive ints such as 64,64"
    try:
        widths = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if not widths or min(widths) < 1:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return widths


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the flags of ``icnn train`` to ``parser``, each with a help text."""
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--data", help="training data file (.npz or .csv, see above)")
    source.add_argument("--target", default="quadratic",
                        choices=["quadratic", "abs", "logsumexp", "huber"],
                        help="built-in convex target t(x, y) when no --data is given "
                             "(c(x) = mean(sin x), 0 without x): quadratic ||y - c||^2, "
                             "abs ||y - c||_1, logsumexp log sum exp(y + c), huber")
    parser.add_argument("--n-samples", type=_positive_int, default=2048,
                        help="number of random points for a built-in target")
    parser.add_argument("--y-dim", type=_positive_int, default=2, help="size of y for a built-in target")
    parser.add_argument("--x-dim", type=_non_negative_int, default=0,
                        help="size of the context x for a built-in target (0: no context)")
    parser.add_argument("--out", required=True, help="output directory (created if missing)")
    parser.add_argument("--model", choices=["auto", "ficnn", "picnn"], default="auto",
                        help="network: FICNN f(y), PICNN f(x, y); auto picks PICNN when the "
                             "data have x")
    parser.add_argument("--hidden", type=_widths, default="64,64",
                        help="comma-separated hidden widths")
    parser.add_argument("--activation", default="relu",
                        help="y-path activation (convex, non-decreasing), e.g. relu, softplus")
    parser.add_argument("--constraint", choices=["softplus", "exp", "project"],
                        default="softplus", help="how W^(z) >= 0 is kept")
    parser.add_argument("--strong-convexity", type=_non_negative_float, default=0.0,
                        help="mu >= 0 of the added (mu/2)||y||^2 term")
    parser.add_argument("--init", choices=["icnn", "default"], default="icnn",
                        help="weight initialisation")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32",
                        help="floating-point precision of model and data")
    parser.add_argument("--epochs", type=_positive_int, default=20, help="passes over the training set")
    parser.add_argument("--batch-size", type=_positive_int, default=128,
                        help="global mini-batch size (split across processes)")
    parser.add_argument("--optimizer", choices=["adam", "adamw", "sgd"], default="adam",
                        help="optimiser")
    parser.add_argument("--lr", type=_positive_float, default=1e-3, help="learning rate")
    parser.add_argument("--weight-decay", type=_non_negative_float, default=0.0, help="weight decay")
    parser.add_argument("--schedule", choices=["constant", "cosine", "step"],
                        default="constant", help="learning-rate schedule, stepped per epoch")
    parser.add_argument("--grad-clip", type=_positive_float, default=None,
                        help="clip the global gradient norm to this value")
    parser.add_argument("--val-fraction", type=_fraction, default=0.2,
                        help="share of the data held out for validation, in [0, 1) (0: none)")
    parser.add_argument("--patience", type=_positive_int, default=None,
                        help="stop after this many epochs without validation improvement")
    parser.add_argument("--checkpoint-every", type=_positive_int, default=1,
                        help="write a resumable checkpoint every this many epochs")
    parser.add_argument("--resume", action="store_true",
                        help="continue from DIR/checkpoints if present")
    parser.add_argument("--seed", type=_seed, default=0, help="random seed, in [0, 2**32)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def training_device(context: DistContext) -> torch.device:
    """Where this process trains.

    Its group's device when distributed (``cuda:LOCAL_RANK`` under NCCL, the CPU under gloo), the CPU for a
    single process.
    """
    import torch

    return context.device if context.enabled else torch.device("cpu")


def run(args: argparse.Namespace) -> int:
    """Run ``icnn train`` with the parsed ``args``; return the exit status (0 on success)."""
    import json
    from pathlib import Path

    import torch

    from ... import FICNN, PICNN
    from ...checkpoint import atomic_write, save
    from ...learn import Trainer, TrainerConfig, init_distributed
    from .data import builtin_data, load_file

    context = init_distributed()
    if args.data:
        x, y, target = load_file(args.data)
    else:
        x, y, target = builtin_data(args.target, args.n_samples, args.y_dim, args.x_dim,
                                    args.seed)
    dtype = getattr(torch, args.dtype)
    device = training_device(context)
    x = None if x is None else x.to(device, dtype)
    y, target = y.to(device, dtype), target.to(device, dtype)
    kind = args.model if args.model != "auto" else ("picnn" if x is not None else "ficnn")
    if kind == "picnn" and x is None:
        raise ValueError("--model picnn needs data with a context x (or --x-dim > 0)")
    hidden = args.hidden if isinstance(args.hidden, list) else _widths(args.hidden)
    common = {"hidden": hidden, "activation": args.activation, "constraint": args.constraint,
              "strong_convexity": args.strong_convexity, "init": args.init}
    torch.manual_seed(args.seed)
    if kind == "picnn":
        model = PICNN(x.shape[1], y.shape[1], **common).to(device, dtype)
    else:
        model = FICNN(y.shape[1], **common).to(device, dtype)
        x = None

    n = len(target)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(args.seed))
    n_val = int(round(args.val_fraction * n))
    val, train = order[:n_val].to(device), order[n_val:].to(device)
    if args.val_fraction > 0 and n_val == 0:
        raise ValueError(f"--val-fraction {args.val_fraction} holds out no row of {n}; expected "
                         f"0 (no validation) or a share of at least {1 / n:.3g}")
    if len(train) == 0:
        raise ValueError(f"--val-fraction {args.val_fraction} leaves no training data (of {n} "
                         "rows, all would be held out); expected a smaller share")
    columns = (y, target) if x is None else (x, y, target)

    def mse(model, batch):
        *inputs, t = batch
        return (model(*inputs) - t).square()

    def evaluate(model):
        if n_val == 0:
            return {}
        with torch.no_grad():
            return {"val_mse": float(mse(model, tuple(c[val] for c in columns)).mean())}

    config = TrainerConfig(
        epochs=args.epochs, batch_size=args.batch_size, optimizer=args.optimizer, lr=args.lr,
        weight_decay=args.weight_decay, schedule=args.schedule, grad_clip=args.grad_clip,
        seed=args.seed, monitor="val_mse" if n_val else "train_loss", patience=args.patience,
        checkpoint_every=args.checkpoint_every, progress=not args.no_progress,
    )
    out = Path(args.out)
    trainer = Trainer(model, mse, config, out_dir=out, eval_fn=evaluate)
    history = trainer.fit(tuple(c[train] for c in columns), resume=args.resume)
    if context.is_main:
        save(model, out / "model.safetensors", metadata={"epochs": len(history)})
        summary = {"model": kind, "config": model.config, "n_train": len(train),
                   "n_val": n_val, "epochs_run": len(history), "final": history[-1],
                   "best": trainer.best, "monitor": config.monitor}
        text = json.dumps(summary, indent=1)
        atomic_write(out / "summary.json", lambda tmp: Path(tmp).write_text(text))
        print(json.dumps(history[-1]))
    return 0
