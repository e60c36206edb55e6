"""``icnn completion``: complete the missing half of a face with a conv PICNN (paper §6.3).

Example (the paper's Olivetti protocol, all three variants)::

    icnn completion --images ../shared/data/olivetti/olivettifaces.mat --train 350 --out runs/olivetti

writes ``DIR/metrics.json`` (``test_mse`` per method in the paper's 0-255 units, wall times,
seeds, the mean-image baseline), ``DIR/completions.png`` and, per method, ``DIR/<method>/``
(the trainer's per-epoch metrics and ``model.safetensors``, loadable with ``icnn.load``).

Imports here stay light (argparse only); torch and matplotlib load inside :func:`run`.
"""

from __future__ import annotations

import argparse

HELP = "image completion (paper §6.3): conv PICNN trained through its argmin, Olivetti faces"
DESCRIPTION = (
    "Train a conv PICNN f(x, y) to complete images by y_hat = argmin_y f(x, y) over [0, 1], "
    "differentiating through the inference: 'bundle_entropy' (implicit gradient, Proposition 3), "
    "'gd' (unrolled momentum gradient descent) and 'nonconvex' (the same network without the "
    "non-negativity constraints, unrolled GD; an ablation), and 'anchored' (the default: "
    "(w/2)||y - g(x)||^2 + PICNN, g the closed-form baseline best by cross-validation over "
    "people, unrolled GD from g(x); validated by cross-fitting over every training person "
    "(--verdict-folds): when it does not beat every baseline on the out-of-fold people "
    "(one-sided Student-t, see --fallback-z), the predictions of the baseline best there "
    "are returned and metrics.json says so; every method gets that verdict), and 'averaged' "
    "(the bundle-entropy ICNN's completion averaged with the closed-form baseline g chosen "
    "as the anchor, see --anchor: lambda y_icnn + (1 - lambda) g(x); lambda in {0, .25, .5, .75, 1} "
    "and the epoch chosen by the cross-fit, shipped under the same verdict). Baselines (mean "
    "image, ridge, RBF kernel ridge, their blend: hyper-parameters by K-fold cross-validation "
    "with folds of whole people; the same conv net as a direct MSE regressor: epoch by the "
    "cross-fit) are fit in the "
    "same run. "
    "Default task: the paper's, predict "
    "the left half (columns 0..W/2-1) from the mirrored right half; images 0..N-1 train, the "
    "rest test; MSE = mean over predicted pixels of (255 (y_hat - y))^2. Writes "
    "DIR/metrics.json and DIR/completions.png."
)

# = train.VARIANTS, torch-free
METHOD_NAMES = ("bundle_entropy", "gd", "nonconvex", "anchored", "averaged")
BASELINE_NAMES = ("ridge", "kernel_ridge", "cnn")  # = baselines.BASELINES
PROTOCOL_NAMES = ("paper", "small-faces")  # = protocols.PROTOCOLS
# the anchored energy's default epochs: its validation MSE rose after epochs 4-15 on both
# protocols (experiments/results/completion/commands.md)
ANCHORED_EPOCHS = 15
# folds of the cross-fitted verdict: each fold's fit sees 4/5 of the training people (closer to
# the final fit on all of them than with fewer folds); a default Olivetti run (K fold fits + the
# final fit) takes ~7 minutes on one core with K = 4, so K = 5 stays well under 15
VERDICT_FOLDS = 5


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected comma-separated ints, got {text!r}") from error


# Ends a help text that states its own default: ``%(default)`` in the text stops
# ArgumentDefaultsHelpFormatter from appending "(default: None)", and ``.0s`` prints nothing.
OWN_DEFAULT = "%(default).0s"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags: data, output, methods, and one per field of ``CompletionConfig``."""
    parser.add_argument(
        "--images", default=None,
        help="Olivetti olivettifaces.mat or a .npy (N, H, W) array in [0, 1] "
             "(default: the Olivetti file in the data folder)" + OWN_DEFAULT,
    )
    parser.add_argument("--train", type=int, default=None,
                        help="the first N images train, the others test (default 350)" + OWN_DEFAULT)
    parser.add_argument("--protocol", default="paper", choices=PROTOCOL_NAMES,
                        help="paper: the images as given; small-faces: Olivetti at 24x24, "
                             "images 0-79 train, 350-399 test (a small set to develop on)")
    parser.add_argument("--out", required=True, help="output directory" + OWN_DEFAULT)
    parser.add_argument("--method", nargs="+", choices=METHOD_NAMES, default=["anchored"],
                        help="variants to train, in order (the paper's table: bundle_entropy gd "
                             "nonconvex with --validation 0; averaged needs the cross-fit)")
    parser.add_argument("--baselines", nargs="*", choices=BASELINE_NAMES,
                        default=list(BASELINE_NAMES),
                        help="baselines fit besides the mean image (closed-form ones: hyper-parameters by "
                             "cross-validation over people, chosen again inside every cross-fit "
                             "fold for the verdict; cnn: epoch by the cross-fit, or on the "
                             "validation split with --verdict-folds 0 / --validation N)")
    parser.add_argument("--anchor", default="best",
                        choices=("best", "mean_image", "ridge", "kernel_ridge", "blend"),
                        help="g of the anchored energy and of the averaged recipe (best: the "
                             "closed-form baseline best by "
                             "cross-validation over people; ridge, kernel_ridge and blend need "
                             "those baselines in --baselines)")
    parser.add_argument("--fallback-z", type=float, default=2.0,
                        help="one-sided level, in normal deviations, of the validation verdict: "
                             "a method beats a baseline when its mean per-image gain exceeds the "
                             "Student-t critical value (validating people - 1 degrees of freedom: "
                             "every training person with the cross-fit) at this level in "
                             "standard errors; the anchored energy ships only if it beats every "
                             "baseline (else the baseline best out of fold, or on the "
                             "validation split with a hold-out)")
    parser.add_argument("--anchor-weight", type=float, default=10.0,
                        help="w of the anchored energy's term (w/2)||y - g(x)||^2")
    parser.add_argument("--scale-geometry", action=argparse.BooleanOptionalAction, default=True,
                        help="shrink kernel sizes and strides for images smaller than 64x32")
    parser.add_argument(
        "--mask", default="left-half",
        help="what is missing: left-half (the paper's task), random:F (fraction F of pixels), "
             "block:TOP,LEFT,HEIGHT,WIDTH or center:HEIGHT,WIDTH (pinned through fixed=)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of weights, batches and masks")
    parser.add_argument("--ensemble", type=int, default=1, metavar="K",
                        help="train K members per method (seeds S, S+1, ...) and predict with the "
                             "argmin of their mean energy, still one convex problem; K > 1 needs "
                             "a hold-out (--verdict-folds 0 or --validation N), not the default "
                             "cross-fit, and is refused for anchored")
    parser.add_argument("--validation", type=int, default=None, metavar="N",
                        help="hold out the last N training images as the validation set (0: "
                             "none, the paper's protocol; default: --validation-fraction)" + OWN_DEFAULT)
    parser.add_argument("--verdict-folds", type=int, default=None, metavar="K",
                        help=f"K folds of whole people for the cross-fitted verdict (default "
                             f"{VERDICT_FOLDS} without --validation); each method and baseline "
                             f"(its hyper-parameters and the anchor chosen inside the fold) is fit "
                             f"on K-1 folds and scores the other, for every fold, so every "
                             f"training person validates once (the epoch is chosen on these "
                             f"out-of-fold curves, the shipped model is trained on every training "
                             f"image); 0: hold out --validation-fraction of the people instead; "
                             f"K >= 2 with --validation is refused" + OWN_DEFAULT)
    parser.add_argument("--validation-fraction", type=float, default=0.2, metavar="F",
                        help="with --verdict-folds 0: fraction of the training people (groups, "
                             "see --group-size) held out for validation: early stopping and the "
                             "anchored energy's fallback test")
    parser.add_argument("--folds", type=int, default=10,
                        help="folds (whole people, at most one per person) of the "
                             "cross-validation that chooses the closed-form baselines and the "
                             "anchor, and of the out-of-fold anchor values the anchored energy "
                             "trains on")
    parser.add_argument("--group-size", type=int, default=None, metavar="N",
                        help="consecutive images per person, never split by a fold or the "
                             "hold-out (default: 10 for the Olivetti faces, 1 for a .npy)" + OWN_DEFAULT)
    parser.add_argument("--epochs", type=int, default=None,
                        help="passes over the training images (and their mirrors, see --flip); "
                             "default 30, 15 for anchored (also the CNN baseline's when given)" + OWN_DEFAULT)
    parser.add_argument("--batch-size", type=int, default=70, help="images per Adam step")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    parser.add_argument("--schedule", default="cosine", choices=("cosine", "constant", "step"),
                        help="learning-rate schedule over the epochs")
    parser.add_argument("--weight-decay", type=float, default=0.0, help="Adam L2 weight decay")
    parser.add_argument("--flip", action=argparse.BooleanOptionalAction, default=True,
                        help="add the left-right mirror of every training image")
    parser.add_argument("--max-shift", type=int, default=0,
                        help="translate training examples by random shifts of up to this many "
                             "pixels each mini-batch (0: none)")
    parser.add_argument("--average", type=float, default=None, metavar="DECAY",
                        help="evaluate an exponential moving average of the weights with this "
                             "decay, e.g. 0.95 (default: the last weights)" + OWN_DEFAULT)
    parser.add_argument("--inner-steps", type=int, default=5,
                        help="bundle-entropy iterations or unrolled GD steps per prediction")
    parser.add_argument("--inner-lr", type=float, default=0.01, help="step size of the GD steps")
    parser.add_argument("--momentum", type=float, default=0.9, help="momentum of the GD steps")
    parser.add_argument("--energy-scale", type=float, default=None,
                        help="initial value of the learned positive factor of the energy "
                             "(default 100; 10 for anchored)" + OWN_DEFAULT)
    parser.add_argument("--constraint", default="project", choices=("project", "softplus", "exp"),
                        help="how W^(z) >= 0 is kept (project: the paper's clipping)")
    parser.add_argument("--channels", type=_ints, default=(32, 64, 64),
                        help="conv channels per stage")
    parser.add_argument("--kernel-sizes", type=_ints, default=(8, 4, 3),
                        help="conv kernel size per stage")
    parser.add_argument("--strides", type=_ints, default=(4, 2, 1), help="conv stride per stage")
    parser.add_argument("--dense", type=_ints, default=(512,),
                        help="dense hidden widths ('' for none)")
    parser.add_argument("--eval-every", type=int, default=10,
                        help="epochs between test evaluations (learning curve only)")
    parser.add_argument("--show", type=int, default=12, help="test faces in completions.png")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's)" + OWN_DEFAULT)
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                        help="show a progress bar")


def run(args: argparse.Namespace) -> int:
    """Train the requested variants, then write metrics.json and completions.png.

    Errors in the input raise ValueError/FileNotFoundError; :func:`icnn.cli.main` reports them.
    """
    from pathlib import Path

    import torch

    from icnn.tasks.completion.run import CompletionRun, run_completion
    from icnn.tasks.completion.train import CompletionConfig

    if args.verdict_folds not in (None, 0) and args.validation is not None:
        raise ValueError(f"expected either --verdict-folds K (the cross-fit) or --validation N (a "
                         f"hold-out), got --verdict-folds {args.verdict_folds} and --validation "
                         f"{args.validation}")
    verdict_folds = VERDICT_FOLDS if args.verdict_folds is None else args.verdict_folds
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    images = args.images
    if images is None:
        from icnn.data import default_data_dir

        images = default_data_dir() / "olivetti" / "olivettifaces.mat"
    kernel_sizes, strides = args.kernel_sizes, args.strides
    if args.scale_geometry:
        from icnn.data.images import load_images
        from icnn.tasks.completion.protocols import SMALL_SIDE, scale_geometry

        if args.protocol == "small-faces":
            size = (SMALL_SIDE, SMALL_SIDE // 2)
        else:
            height, width = load_images(images).shape[1:]
            size = (height, width // 2) if args.mask == "left-half" else (height, width)
        if len(kernel_sizes) != len(strides):
            raise ValueError(f"expected one stride per kernel size, got {len(kernel_sizes)} "
                             f"kernel sizes and {len(strides)} strides")
        kernel_sizes, strides = scale_geometry(kernel_sizes, strides, size)
    configs = [
        CompletionConfig(
            variant=method, channels=args.channels, kernel_sizes=kernel_sizes,
            strides=strides, dense=args.dense, constraint=args.constraint,
            energy_scale=(args.energy_scale if args.energy_scale is not None
                          else 10.0 if method == "anchored" else 100.0),
            anchor_weight=args.anchor_weight, inner_steps=args.inner_steps,
            inner_lr=args.inner_lr, momentum=args.momentum,
            epochs=(args.epochs if args.epochs is not None
                    else ANCHORED_EPOCHS if method == "anchored" else 30),
            batch_size=args.batch_size, lr=args.lr, schedule=args.schedule,
            weight_decay=args.weight_decay, flip=args.flip, max_shift=args.max_shift,
            average=args.average, seed=args.seed,
            eval_every=args.eval_every, progress=args.progress,
        )
        for method in dict.fromkeys(args.method)
    ]
    spec = CompletionRun(images=Path(images), n_train=args.train, out=Path(args.out),
                         mask=args.mask, show=args.show, seed=args.seed,
                         validation=args.validation, ensemble=args.ensemble,
                         validation_fraction=args.validation_fraction, protocol=args.protocol,
                         baselines=tuple(args.baselines), anchor=args.anchor,
                         fallback_z=args.fallback_z, anchor_folds=args.folds,
                         verdict_folds=verdict_folds,
                         group_size=args.group_size,
                         regressor_epochs=30 if args.epochs is None else args.epochs)
    summary = run_completion(spec, configs, log=print)
    for method, record in summary["methods"].items():
        if "members" in record:
            each = ", ".join(f"{m['test_mse']:.1f}" for m in record["members"])
            print(f"{method}: members' test MSE {each}")
            method = f"{method} ensemble of {record['ensemble']}"
        val = "" if record["val_mse"] is None else f", validation {record['val_mse']:.1f}"
        if "blend_weight" in record:
            val += (f"; the ICNN alone {record['icnn_test_mse']:.1f} on test, blend weight "
                    f"{record['blend_weight']} (by the cross-fit) with {record['anchor']}")
        if record.get("fallback"):
            what = "the averaged prediction" if "blend_weight" in record else "the energy"
            val += (f"; {what} ({record['energy_val_mse']:.1f} on validation) did not beat "
                    f"every baseline: {record['shipped']}'s predictions shipped")
        elif record.get("selected") not in (None, method.split()[0]):
            val += f"; validation selects {record['selected']} (see metrics.json verdict)"
        print(f"{method}: test MSE {record['test_mse']:.1f} (train {record['train_mse']:.1f}{val}), "
              f"{record['wall_seconds']:.0f} s")
    for name, mse in summary["baselines"].items():
        print(f"baseline {name}: test MSE {mse:.1f}")
    print(f"mean-image baseline: test MSE {summary['baselines']['mean_image']:.1f}; "
          f"wrote {spec.out / 'metrics.json'} and {spec.out / 'completions.png'}")
    return 0
