"""Summarise the Olivetti runs into ``table.md`` and ``results.json`` beside this file.

Reads every ``runs/*/metrics.json`` written by ``icnn completion --ensemble 3`` (one run per
method or all methods in one; see ``commands.md``), else the ``metrics-*.json`` copies kept here.
Per method: the single models (the ensemble's members, one per seed: mean ± std and each seed)
and the ensemble (the argmin of the members' mean energy).
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

ROOT = Path(__file__).resolve().parent
METHODS = {
    "bundle_entropy": "ICNN, bundle entropy (implicit argmin gradient)",
    "gd": "ICNN, unrolled gradient descent",
    "nonconvex": "same network without W^(z) >= 0 (non-convex), unrolled GD",
}


def mean_std(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}"


def main() -> None:
    paths = sorted(ROOT.glob("runs/*/metrics.json")) or sorted(ROOT.glob("metrics-*.json"))
    records = [json.loads(p.read_text()) for p in paths]
    methods = {name: run for record in records for name, run in record["methods"].items()}
    rows = [
        "| method | single model: test MSE (mean ± std) | per seed | ensemble of the seeds' "
        "models (mean energy) | paper | single model: train MSE | wall time per model (s) | "
        "seeds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    summary = {}
    for method, label in METHODS.items():
        if method not in methods:
            continue
        run = methods[method]
        members = run.get("members", [run])
        test = [m["test_mse"] for m in members]
        train = [m["train_mse"] for m in members]
        wall = [m["wall_seconds"] for m in members]
        seeds = [m["seed"] for m in members]
        ensemble = run["test_mse"] if "members" in run else None
        paper = records[0]["paper_mse"][method]
        summary[method] = {"test_mse": test, "train_mse": train, "wall_seconds": wall,
                           "seeds": seeds, "ensemble_test_mse": ensemble, "paper_mse": paper}
        rows.append(
            f"| {label} | {mean_std(test)} | {', '.join(f'{t:.1f}' for t in test)} | "
            f"{'–' if ensemble is None else f'{ensemble:.1f}'} | {paper} | {mean_std(train)} | "
            f"{mean_std(wall)} | {', '.join(map(str, seeds))} |")
    baseline = records[0]["baselines"]["mean_image"]
    rows += [
        f"| mean training left half (trivial baseline) | {baseline:.1f} | – | – | – | – | – | – |",
        "| paper: sum-product network (Poon & Domingos 2011) | – | – | – | 942.0 | – | – | – |",
        "| paper (thesis; code added later): FCN / dilated CNN, best test epoch | – | – | – | "
        "795.4 / 800.0 | – | – | – |",
    ]
    text = "\n".join(rows) + "\n"
    (ROOT / "table.md").write_text(text)
    (ROOT / "results.json").write_text(json.dumps({
        "runs": [str(p.relative_to(ROOT)) for p in paths], "methods": summary,
        "mean_image_baseline": baseline, "metric": records[0]["metric"],
    }, indent=1) + "\n")
    print(text)


if __name__ == "__main__":
    main()
