"""Can the PICNN's label-interaction path pay? Ablations on yeast, scene and emotions.

Every cell is one ``icnn multilabel`` run (one torch thread, niced; a run whose ``metrics.json``
exists is reused unless ``--rerun``), on the published splits ("full") and on the small-data
protocol ("small": the first ``SMALL[dataset]`` examples of the training file, ``--max-train``),
seeds 0, 1, 2. The PICNN variants start from the ``ff`` run of the same seed and protocol
(Proposition 2) and change one thing of the table's ``picnn-argmin`` recipe: the scale of the
convex y-path (the label interactions) at the warm start, its learning rate, the inner
iterations, the entropy weight, or training it on top of a frozen feed-forward net; each has
a control with that path switched off (``--z-scale 0``). The ``ff`` runs also measure the
baselines (logistic regression, classifier chain, kNN), tuned on validation.

One more column reads the trained models directly: the test example F1 of the same model with
its z-path removed after training (the z-gate rows of the output layer set to 0, threshold kept).
If the label-interaction path mattered, removing it would change the predictions.

Writes ``experiments/results/multilabel/ablations.md`` (+ ``ablations.json``, ``ablations-commands.md``).

    python experiments/multilabel_ablations.py
    python experiments/multilabel_ablations.py --protocols small --datasets yeast
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
from pathlib import Path

from multilabel_table import DATASETS, MODELS, RESULTS, ROOT, run

SMALL = {"yeast": 300, "scene": 300, "emotions": 150}
ABLATION_SETS = ("yeast", "scene", "emotions")
BASE = MODELS["picnn-argmin"]
FROZEN = [*BASE, "--freeze-x-path", "--epochs", "30", "--patience", "8"]
# variant -> extra flags on top of the table's picnn-argmin recipe (later flags win)
VARIANTS = {
    "z-path off (control)": ["--z-scale", "0"],
    "recipe (z-scale 0.01)": [],
    "z-scale 0.1": ["--z-scale", "0.1"],
    "z-scale 0.3": ["--z-scale", "0.3"],
    "z-scale 1": ["--z-scale", "1"],
    "z-lr 1e-2": ["--z-lr", "1e-2"],
    "z-scale 0.3, z-lr 1e-3": ["--z-scale", "0.3", "--z-lr", "1e-3"],
    "10 inner iterations": ["--solver-iters", "10"],
    "entropy weight 0.3": ["--entropy-weight", "0.3"],
    "entropy weight 0.3, z-scale 0.3": ["--entropy-weight", "0.3", "--z-scale", "0.3"],
    "entropy weight 3": ["--entropy-weight", "3"],
}
FROZEN_VARIANTS = {
    "frozen ff, z-path off (control)": ["--z-scale", "0"],
    "frozen ff, z-scale 0.1, z-lr 1e-3": ["--z-scale", "0.1", "--z-lr", "1e-3"],
    "frozen ff, z-scale 0.3, z-lr 1e-2": ["--z-scale", "0.3", "--z-lr", "1e-2"],
}
SMALL_VARIANTS = ("z-path off (control)", "recipe (z-scale 0.01)", "z-scale 0.3, z-lr 1e-3",
                  "frozen ff, z-path off (control)", "frozen ff, z-scale 0.1, z-lr 1e-3")


def slug(name: str) -> str:
    return "".join(c if c.isalnum() or c == "." else "-" for c in name).strip("-")


def argv_for(protocol: str, dataset: str, variant: str | None, seed: int, data_dir: Path
             ) -> tuple[list[str], Path]:
    folder = RESULTS / "runs" / "ablations" / protocol / dataset
    ff_out = folder / "ff" / f"seed{seed}"
    if variant is None:
        flags, out = list(MODELS["ff"]), ff_out
    else:
        base = FROZEN if variant in FROZEN_VARIANTS else BASE
        extra = {**VARIANTS, **FROZEN_VARIANTS}[variant]
        flags = [*base, *extra, "--baselines",
                 "--ff-checkpoint", str((ff_out / "model.safetensors").relative_to(ROOT))]
        out = folder / slug(variant) / f"seed{seed}"
    if protocol == "small":
        flags += ["--max-train", str(SMALL[dataset])]
    d = Path(os.path.relpath(data_dir / dataset, ROOT))  # recorded relative to the repository
    argv = ["icnn", "multilabel", "--train", str(d / f"{dataset}-train.arff"),
            "--test", str(d / f"{dataset}-test.arff"), "--labels", str(DATASETS[dataset]),
            *flags, "--seed", str(seed), "--threads", "1", "--no-progress",
            "--out", str(out.relative_to(ROOT))]
    return argv, out


def without_z_path(metrics: dict, out: Path) -> float:
    """Test example F1 of the run's saved PICNN with its z-path removed (threshold kept)."""
    import torch

    import icnn
    from icnn.tasks.multilabel.config import MultilabelConfig
    from icnn.tasks.multilabel.experiment import load_data
    from icnn.tasks.multilabel.inference import label_scores
    from icnn.tasks.multilabel.metrics import multilabel_scores

    config = MultilabelConfig(**metrics["config"])
    _, _, test = load_data(config)
    picnn = icnn.load(out / "model.safetensors")
    with torch.no_grad():
        z_gate_w, _, _ = picnn.u_maps[1].weight.split(picnn.split_sizes[1])
        z_gate_b, _, _ = picnn.u_maps[1].bias.split(picnn.split_sizes[1])
        z_gate_w.zero_()
        z_gate_b.zero_()
    scores = label_scores(picnn, test.features, solver=config.inference_solver,
                          iterations=config.solver_iters)
    return multilabel_scores(test.labels, scores >= metrics["threshold"])["example_f1"]


def at_least_one(scores, threshold: float):
    """Decisions ``scores >= threshold``, plus the top label of every example left with none."""
    import torch

    decisions = scores >= threshold
    empty = ~decisions.any(1)
    top = torch.zeros_like(decisions).scatter_(1, scores.argmax(1, keepdim=True), True)
    return torch.where(empty.unsqueeze(1), top, decisions)


def headroom(metrics: dict, out: Path) -> dict[str, float]:
    """What one label interaction (a cardinality rule: at least one label per example) buys on
    top of the ff run's marginals, threshold re-chosen on validation; test example F1 and label
    macro-F1 of both decoders."""
    from icnn.tasks.multilabel.config import MultilabelConfig
    from icnn.tasks.multilabel.experiment import load_data, load_feedforward
    from icnn.tasks.multilabel.inference import label_scores
    from icnn.tasks.multilabel.metrics import DEFAULT_THRESHOLD_GRID, multilabel_scores

    config = MultilabelConfig(**metrics["config"])
    _, validation, test = load_data(config)
    ff = load_feedforward(out / "model.safetensors")
    val_scores, test_scores = label_scores(ff, validation.features), label_scores(ff, test.features)
    metric = config.threshold_metric
    threshold = max(DEFAULT_THRESHOLD_GRID, key=lambda t: multilabel_scores(
        validation.labels, at_least_one(val_scores, t))[metric])
    scores = multilabel_scores(test.labels, at_least_one(test_scores, threshold))
    return {"at_least_one_example_f1": scores["example_f1"],
            "at_least_one_macro_f1": scores["macro_f1"]}


def cell(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def report(rows: dict) -> str:
    lines = [
        "| protocol | data set | model | val example F1 | test example F1 | test label macro-F1 "
        "| Δ test ex-F1 vs ff | Δ vs z-path-off control | test ex-F1, z-path removed | "
        "best epochs |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (protocol, dataset), models in rows.items():
        ff = [m["example_f1"] for m in models["ff"]]
        for name, runs in models.items():
            test = [m["example_f1"] for m in runs]
            delta = [a - b for a, b in zip(test, ff, strict=True)] if name != "ff" else []
            control = ("frozen ff, z-path off (control)" if name.startswith("frozen")
                       else "z-path off (control)")
            vs_control = ""
            is_variant = name in VARIANTS or name in FROZEN_VARIANTS
            if is_variant and name != control and control in models:
                other = [m["example_f1"] for m in models[control]]
                vs_control = cell([a - b for a, b in zip(test, other, strict=True)])
            removed = [m["z_removed_example_f1"] for m in runs if "z_removed_example_f1" in m]
            epochs = ", ".join(str(m["best_epoch"]) for m in runs) if "best_epoch" in runs[0] else "–"
            lines.append(
                f"| {protocol} | {dataset} | {name} | {cell([m['val_score'] for m in runs])} | "
                f"{cell(test)} | {cell([m['macro_f1'] for m in runs])} | "
                f"{cell(delta) if delta else '–'} | {vs_control or '–'} | "
                f"{cell(removed) if removed else '–'} | {epochs} |")
    lines += [
        "",
        "Head-room of one label interaction on the feed-forward marginals (no training): the "
        "`ff` run's probabilities decoded with a global threshold (the `ff` row) or with the "
        "same kind of threshold plus *at least one label per example* (threshold re-chosen on "
        "validation); and classifier chain minus binary relevance (the same logistic "
        "regressions with and without the labels before them as inputs).",
        "",
        "| protocol | data set | ff: test example F1 | ff + at least one label | Δ | "
        "ff: test label macro-F1 | ff + at least one label | chain − logreg test example F1 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (protocol, dataset), models in rows.items():
        ff = models["ff"]
        plain = [m["example_f1"] for m in ff]
        one = [m["at_least_one_example_f1"] for m in ff]
        chain = [a["example_f1"] - b["example_f1"]
                 for a, b in zip(models.get("chain", []), models.get("logreg", []), strict=True)]
        lines.append(
            f"| {protocol} | {dataset} | {cell(plain)} | {cell(one)} | "
            f"{cell([a - b for a, b in zip(one, plain, strict=True)])} | "
            f"{cell([m['macro_f1'] for m in ff])} | "
            f"{cell([m['at_least_one_macro_f1'] for m in ff])} | "
            f"{cell(chain) if chain else '–'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=list(ABLATION_SETS),
                        choices=list(ABLATION_SETS))
    parser.add_argument("--protocols", nargs="+", default=["full", "small"],
                        choices=["full", "small"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--data", default=None, help="data folder (default_data_dir())")
    parser.add_argument("--rerun", action="store_true")
    args = parser.parse_args(argv)
    from icnn.data import default_data_dir

    data_dir = Path(args.data) if args.data else default_data_dir()
    rows: dict = {}
    commands = []
    for protocol in args.protocols:
        variants = list(VARIANTS) + list(FROZEN_VARIANTS) if protocol == "full" else SMALL_VARIANTS
        for dataset in args.datasets:
            models = rows.setdefault((protocol, dataset), {})
            for variant in [None, *variants]:
                for seed in args.seeds:
                    run_argv, out = argv_for(protocol, dataset, variant, seed, data_dir)
                    commands.append(shlex.join(run_argv))
                    print(f"== {protocol} / {dataset} / {variant or 'ff'} / seed {seed}",
                          flush=True)
                    metrics = run(run_argv, out, args.rerun)
                    if variant is not None:
                        metrics["z_removed_example_f1"] = without_z_path(metrics, out)
                    else:
                        metrics.update(headroom(metrics, out))
                    models.setdefault(variant or "ff", []).append(metrics)
                    if variant is None:  # the baselines measured in the ff run
                        for name, result in metrics["baselines"].items():
                            models.setdefault(name, []).append(result)
    text = report(rows)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ablations-table.md").write_text(text)
    (RESULTS / "ablations.json").write_text(json.dumps(
        {f"{p}/{d}": models for (p, d), models in rows.items()}, indent=1))
    (RESULTS / "ablations-commands.md").write_text(
        "Run from the repository root with OMP_NUM_THREADS=1 and `nice -n 5` "
        "(`python experiments/multilabel_ablations.py`):\n\n```\n" + "\n".join(commands) + "\n```\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
