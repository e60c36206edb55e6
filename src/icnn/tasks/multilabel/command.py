r"""``icnn multilabel``: train the baseline or the PICNN on a Mulan ARFF pair and score the test file.

Example::

    icnn multilabel --train bibtex-train.arff --test bibtex-test.arff --labels 159 \
        --model picnn --training argmin --out runs/bibtex-picnn
"""

from __future__ import annotations

import argparse

HELP = "multi-label classification (BibTeX etc.): feed-forward baseline vs PICNN energy"
DESCRIPTION = (
    "Train a feed-forward baseline or a PICNN energy f(x, y) over labels y in [0,1]^L on a "
    "Mulan-style ARFF pair; predict with icnn.argmin (PICNN), pick the decision threshold on a "
    "validation split of the training file, and write DIR/metrics.json (test macro_f1, micro_f1, "
    "example_f1 = the paper's 'macro-F1', hamming) and the checkpoint DIR/model.safetensors."
)


def _optional_int(text: str) -> int | None:
    return None if text.lower() in ("", "none", "all") else int(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``icnn multilabel``; they map one to one onto ``MultilabelConfig``."""
    from .baselines import BASELINES
    from .config import DIFFERENTIABLE, LOSSES, SOLVERS, TRAININGS, MultilabelConfig
    from .metrics import METRICS
    from .models import MODELS

    d = MultilabelConfig()
    add = parser.add_argument
    add("--train", required=True, help="training ARFF file (Mulan style: labels last)")
    add("--test", required=True, help="test ARFF file, same attributes as --train")
    add("--labels", type=int, default=d.labels,
        help="number of labels L (the last L attributes); default: read <name>.xml beside --train")
    add("--model", choices=MODELS, default=d.model, help="ff baseline or picnn energy")
    add("--training", choices=TRAININGS, default=d.training,
        help="picnn: loss through the argmin (Section 5.2) or max-margin (Section 5.1)")
    add("--out", default=d.out, help="output folder for metrics.json and model.safetensors")
    add("--epochs", type=int, default=d.epochs, help="maximum training epochs")
    add("--batch-size", type=int, default=d.batch_size,
        help="mini-batch size (lowered to ceil(n_train / 8) on a small training set; never a "
             "batch of one example)")
    add("--lr", type=float, default=d.lr,
        help="Adam learning rate (a warm-started picnn fine-tunes best with ~1e-4)")
    add("--weight-decay", type=float, default=d.weight_decay, help="Adam weight decay")
    add("--patience", type=int, default=d.patience,
        help="early stopping: epochs without a better validation score (0: never stop)")
    add("--hidden", type=int, default=d.hidden,
        help="ff hidden width / picnn x-path width (paper: 600)")
    add("--y-hidden", type=int, default=d.y_hidden, help="picnn y-path hidden width")
    add("--dropout", type=float, default=d.dropout,
        help="picnn: dropout on the input features (the ff net's: --ff-dropout)")
    add("--ff-dropout", type=float, nargs="+", default=d.ff_dropout,
        help="the ff net's dropout on its hidden layer (--model ff and the picnn warm start's "
             "baseline), chosen on validation among these values (default: 0 0.5)")
    add("--strong-convexity", type=float, default=d.strong_convexity,
        help="picnn: mu of the added mu/2 ||y||^2")
    add("--solver", choices=SOLVERS, default=d.solver,
        help="icnn.argmin method for inference (default: bundle_entropy, or pgd with "
             "--differentiable unroll)")
    add("--solver-iters", type=int, default=d.solver_iters,
        help="solver iterations (training and inference; paper: 5-10 bundle entropy)")
    add("--differentiable", choices=DIFFERENTIABLE, default=d.differentiable,
        help="argmin training: implicit (through bundle entropy) or unroll (PGD steps)")
    add("--loss", choices=LOSSES, default=d.loss, help="argmin training loss on y_hat")
    add("--margin", type=float, default=d.margin, help="max-margin: scale of the Hamming margin")
    add("--val-fraction", type=float, default=d.val_fraction,
        help="share of the training file held out for early stopping and the threshold")
    add("--threshold-metric", choices=METRICS, default=d.threshold_metric,
        help="validation metric that picks the decision threshold")
    add("--no-init-from-ff", dest="init_from_ff", action="store_false",
        help="picnn: start from a fresh initialisation instead of a trained baseline "
             "(default: warm start by Proposition 2, epoch 0 = the baseline's predictions up to "
             "the small y-path of --z-scale)")
    add("--ff-checkpoint", default=d.ff_checkpoint,
        help="picnn warm start: model.safetensors of an --model ff run (same data, seed, "
             "hidden); default: train the baseline first")
    add("--ff-epochs", type=int, default=d.ff_epochs,
        help="picnn warm start without --ff-checkpoint: baseline epochs")
    add("--ff-patience", type=int, default=d.ff_patience,
        help="picnn warm start without --ff-checkpoint: baseline early-stopping patience")
    add("--ff-lr", type=float, default=d.ff_lr,
        help="picnn warm start without --ff-checkpoint: baseline Adam learning rate")
    add("--z-scale", type=float, default=d.z_scale,
        help="picnn warm start: initial scale of the convex y-path hidden layer")
    add("--z-lr", type=float, default=d.z_lr,
        help="picnn warm start: learning rate of the convex y-path hidden layer (default: --lr)")
    add("--freeze-x-path", action="store_true",
        help="picnn warm start: keep the baseline's x-path fixed (computed once; faster)")
    add("--entropy-weight", type=float, default=d.entropy_weight,
        help="picnn: weight w of the entropy in bundle-entropy inference (argmin f - w H)")
    add("--max-train", type=_optional_int, default=d.max_train,
        help="use a random subset of N training examples, seeded by --seed (default: all)")
    add("--baselines", nargs="*", choices=BASELINES, default=d.baselines,
        help="baselines measured in the same run, tuned on validation (default: all; "
             "none: no value); logreg and chain need scikit-learn")
    add("--seed", type=int, default=d.seed, help="seed of the split, init and batch order")
    add("--threads", type=int, default=d.threads, help="torch CPU threads (0: torch default)")
    add("--no-progress", dest="progress", action="store_false", help="hide progress bars")


def config_from_args(args: argparse.Namespace):
    """``MultilabelConfig`` from parsed flags (flag names are the field names)."""
    import dataclasses

    from .config import MultilabelConfig

    fields = {f.name for f in dataclasses.fields(MultilabelConfig)}
    return MultilabelConfig(**{k: v for k, v in vars(args).items() if k in fields})


def run(args: argparse.Namespace) -> int:
    """Run ``icnn multilabel`` with the parsed ``args``; return the exit status (0 on success)."""
    from tqdm.auto import tqdm

    from .experiment import run_experiment

    config = config_from_args(args)
    metrics = run_experiment(config, log=tqdm.write)
    shipped = metrics["shipped"]
    if shipped == config.model:
        print(f"validation selects {shipped} (its test scores are metrics.json's top level); "
              f"wrote {config.out}/metrics.json and {config.out}/model.safetensors")
    else:
        print(f"validation selects baseline {shipped}, not {config.model}: its test scores are "
              f"metrics.json 'selected' (and baselines.{shipped}); the top-level scores and "
              f"{config.out}/model.safetensors are {config.model}'s; wrote "
              f"{config.out}/metrics.json")
    return 0
