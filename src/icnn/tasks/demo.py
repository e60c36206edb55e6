"""``icnn demo`` (``make demo``): a PICNN energy over BibTeX's 159 labels in a few minutes.

Trains the paper's feed-forward baseline, then a PICNN ``f(x, y)`` convex in ``y in [0, 1]^159``
that starts as that baseline (Proposition 2: energy ``-phi(x)^T y``, whose bundle-entropy argmin is
the baseline's sigmoid) and is fine-tuned by a loss through the argmin (Section 5.2); predicts the
PICNN's labels with :func:`icnn.argmin`, prints both models' test scores side by side with the
convexity check of the trained energy, and writes ``metrics.json`` and ``demo.png`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

HELP = "a few-minute tour: PICNN vs feed-forward on BibTeX, with argmin inference and a plot"

METRIC_NAMES = {"example_f1": "example F1 (paper's 'macro-F1')", "macro_f1": "label macro-F1",
                "micro_f1": "micro-F1", "hamming": "Hamming loss (lower is better)"}
PAPER = {"ff": 0.396, "picnn": 0.415, "spen": 0.422}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the flags of ``icnn demo`` to ``parser``, each with a help text."""
    add = parser.add_argument
    add("--out", default="runs/demo", help="output folder (metrics.json, demo.png, checkpoints)")
    add("--data", default=None,
        help="folder holding bibtex/bibtex-{train,test}.arff (default: icnn.data.default_data_dir())")
    add("--ff-epochs", type=int, default=30, help="maximum training epochs of the baseline")
    add("--epochs", type=int, default=4,
        help="maximum fine-tuning epochs of the PICNN (warm-started from the baseline)")
    add("--max-train", type=int, default=None,
        help="use a random subset of N training examples (a tiny budget for smoke tests)")
    add("--y-hidden", type=int, default=64, help="PICNN y-path hidden width")
    add("--solver-iters", type=int, default=3, help="bundle-entropy iterations")
    add("--seed", type=int, default=0, help="random seed")
    add("--no-progress", dest="progress", action="store_false", help="hide progress bars")


def _configs(args: argparse.Namespace, data_dir: Path, out: Path):
    from icnn.tasks.multilabel.config import MultilabelConfig

    common = {"train": str(data_dir / "bibtex" / "bibtex-train.arff"),
              "test": str(data_dir / "bibtex" / "bibtex-test.arff"), "labels": 159,
              "max_train": args.max_train, "seed": args.seed, "progress": args.progress,
              # the quick start compares FF and PICNN only (BibTeX's logreg/chain take ~200 s)
              "baselines": ()}
    ff = MultilabelConfig(model="ff", out=str(out / "ff"), epochs=args.ff_epochs, patience=8,
                          **common)
    # Proposition 2: the PICNN starts as the trained baseline (epoch 0), then is fine-tuned
    picnn = MultilabelConfig(model="picnn", training="argmin", differentiable="implicit",
                             loss="f1", y_hidden=args.y_hidden,
                             solver_iters=args.solver_iters, lr=1e-4,
                             epochs=args.epochs, patience=3,
                             ff_checkpoint=str(out / "ff" / "model.safetensors"),
                             out=str(out / "picnn"), **common)
    return ff, picnn


def _plot(path: Path, results: dict[str, dict], histories: dict[str, list]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (bars, curves) = plt.subplots(1, 2, figsize=(11, 4))
    names = ["example_f1", "macro_f1", "micro_f1"]
    width = 0.38
    for k, (model, color) in enumerate((("ff", "tab:gray"), ("picnn", "tab:blue"))):
        values = [results[model][name] for name in names]
        xs = [i + (k - 0.5) * width for i in range(len(names))]
        bars.bar(xs, values, width, label=model.upper(), color=color)
        for x, v in zip(xs, values, strict=True):
            bars.text(x, v + 0.005, f"{v:.3f}", ha="center", fontsize=8)
    bars.axhline(PAPER["picnn"], color="tab:blue", ls=":", lw=1, label="paper ICNN 0.415 (ex. F1)")
    bars.axhline(PAPER["ff"], color="tab:gray", ls=":", lw=1, label="paper FF 0.396 (ex. F1)")
    bars.set_xticks(range(len(names)), ["example F1", "label macro-F1", "micro-F1"])
    bars.set_title("BibTeX test scores (threshold from validation)")
    bars.legend(fontsize=8, loc="lower right")
    for model, color in (("ff", "tab:gray"), ("picnn", "tab:blue")):
        epochs = [r["epoch"] for r in histories[model]]
        values = [r.get("val_example_f1", float("nan")) for r in histories[model]]
        curves.plot(epochs, values, "o-", color=color, label=model.upper())
    curves.set_xlabel("epoch")
    curves.set_ylabel("validation example F1")
    curves.set_title("training curves")
    curves.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(args: argparse.Namespace) -> int:
    """Run ``icnn demo`` with the parsed ``args``; return the exit status (0 on success)."""
    import torch
    from tqdm.auto import tqdm

    import icnn
    from icnn.data import default_data_dir
    from icnn.tasks.multilabel.experiment import load_data, run_experiment

    started = time.perf_counter()
    data_dir = Path(args.data) if args.data else default_data_dir()
    if not (data_dir / "bibtex" / "bibtex-train.arff").is_file():
        raise FileNotFoundError(f"expected BibTeX at {data_dir / 'bibtex' / 'bibtex-train.arff'}, "
                                "got no such file; pass --data or set ICNN_DATA_DIR")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ff_config, picnn_config = _configs(args, data_dir, out)
    print("icnn demo: multi-label classification on BibTeX (1836 features, 159 labels)")
    print(f"  data: {data_dir / 'bibtex'}   output: {out}\n")

    results, histories = {}, {}
    for name, config in (("ff", ff_config), ("picnn", picnn_config)):
        title = ("feed-forward baseline (fc600+ReLU+BN+dropout -> fc159 -> sigmoid, BCE)" if name == "ff"
                 else f"PICNN energy f(x, y), y in [0,1]^159: x-path 600, y-path {config.y_hidden}; "
                      "starts as the baseline (Proposition 2), fine-tuned by soft example F1 "
                      f"through the bundle-entropy argmin ({config.solver_iters} iterations)")
        print(f"[{name}] {title}")
        results[name] = run_experiment(config, log=lambda line: tqdm.write(f"  {line}"))
        histories[name] = json.loads((Path(config.out) / "history.json").read_text())
        print()

    picnn = icnn.load(Path(picnn_config.out) / "model.safetensors")
    _, _, test = load_data(picnn_config)
    contexts = test.features[:256]
    report = icnn.check_convexity(picnn, contexts, n_pairs=contexts.shape[0],
                                  generator=torch.Generator().manual_seed(0))

    print("Test scores (official BibTeX test split, 2515 examples; threshold chosen on validation)")
    print(f"  {'metric':36s} {'FF':>8s} {'PICNN':>8s}")
    for key, label in METRIC_NAMES.items():
        print(f"  {label:36s} {results['ff'][key]:8.4f} {results['picnn'][key]:8.4f}")
    print(f"  {'threshold':36s} {results['ff']['threshold']:8.2f} {results['picnn']['threshold']:8.2f}")
    print(f"  {'training + test time (s)':36s} {results['ff']['wall_time_s']:8.1f} "
          f"{results['picnn']['wall_time_s']:8.1f}")
    print(f"  paper (example F1, full training): FF {PAPER['ff']}, ICNN {PAPER['picnn']}, "
          f"SPEN {PAPER['spen']}")
    print("\nConvexity check of the trained PICNN in y (structure + sampled Jensen, 256 test x):")
    print("  " + str(report).replace("\n", "\n  "))

    plot_path = out / "demo.png"
    _plot(plot_path, results, histories)
    summary = {
        "ff": {k: results["ff"][k] for k in (*METRIC_NAMES, "threshold", "wall_time_s")},
        "picnn": {k: results["picnn"][k] for k in (*METRIC_NAMES, "threshold", "wall_time_s")},
        "paper_example_f1": PAPER,
        "convexity": {"ok": report.ok, "worst_violation": report.worst_violation,
                      "pairs_checked": report.pairs_checked},
        "seed": args.seed, "epochs": args.epochs, "max_train": args.max_train,
        "wall_time_s": round(time.perf_counter() - started, 1),
    }
    (out / "metrics.json").write_text(json.dumps(summary, indent=1))
    print(f"\nwrote {plot_path} and {out / 'metrics.json'} "
          f"({summary['wall_time_s']:.0f} s in all)")
    return 0 if report.ok else 1
