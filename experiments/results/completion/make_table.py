"""Summarise ``runs/olivetti-seed*/metrics.json`` (written by ``icnn completion``; or the
``metrics-seed*.json`` copies) into ``table.md`` and ``results.json`` beside this file."""

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
    # the runs themselves (git-ignored), else the copies kept beside this file
    paths = sorted(ROOT.glob("runs/olivetti-seed*/metrics.json")) or sorted(
        ROOT.glob("metrics-seed*.json"))
    records = [json.loads(p.read_text()) for p in paths]
    rows = [
        "| method | test MSE, ours (mean ± std) | per seed | paper | train MSE | "
        "wall time per run (s) | seeds |",
        "|---|---|---|---|---|---|---|",
    ]
    summary = {}
    for method, label in METHODS.items():
        runs = [r["methods"][method] for r in records]
        test = [r["test_mse"] for r in runs]
        train = [r["train_mse"] for r in runs]
        wall = [r["wall_seconds"] for r in runs]
        seeds = [r["seed"] for r in runs]
        paper = records[0]["paper_mse"][method]
        summary[method] = {"test_mse": test, "train_mse": train, "wall_seconds": wall,
                           "seeds": seeds, "paper_mse": paper}
        rows.append(f"| {label} | {mean_std(test)} | {', '.join(f'{t:.1f}' for t in test)} | "
                    f"{paper} | {mean_std(train)} | {mean_std(wall)} | "
                    f"{', '.join(map(str, seeds))} |")
    baseline = records[0]["baselines"]["mean_image"]
    rows += [
        f"| mean training left half (trivial baseline) | {baseline:.1f} | – | – | – | – | – |",
        "| paper: sum-product network (Poon & Domingos 2011) | – | – | 942.0 | – | – | – |",
        "| paper (thesis; code added later): FCN / dilated CNN, best test epoch | – | – | "
        "795.4 / 800.0 | – | – | – |",
    ]
    text = "\n".join(rows) + "\n"
    (ROOT / "table.md").write_text(text)
    (ROOT / "results.json").write_text(json.dumps({
        "runs": [str(p.relative_to(ROOT)) for p in paths], "methods": summary,
        "mean_image_baseline": baseline,
        "metric": records[0]["metric"],
    }, indent=1) + "\n")
    print(text)


if __name__ == "__main__":
    main()
