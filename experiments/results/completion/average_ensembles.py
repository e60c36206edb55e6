"""The bundle-entropy ensemble averaged with the baseline, at the weight the cross-fit chose.

Usage::

    python experiments/results/completion/average_ensembles.py \\
        --ensemble-run runs/olivetti-bundle_entropy-default --averaged-run runs/avgb-olivetti-s0 \\
        [--ensemble-run ...] --out experiments/results/completion/issue18/ensembles-averaged.json

``--ensemble-run``: the output of ``icnn completion --method bundle_entropy --ensemble 3
--validation 0`` (members trained on all 350 training images). ``--averaged-run``: the output of
``icnn completion --method averaged``, whose cross-fit chose the blend weight (for single
models) and whose ``averaged/anchor.safetensors`` is the baseline fit on all 350 training images.
Nothing here is chosen on the test faces: the weight is the single model's, validated out of fold.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from icnn.data.images import load_images
from icnn.tasks.completion.baselines import load_anchor, predict_anchor
from icnn.tasks.completion.blend import blend
from icnn.tasks.completion.data import concatenate, make_completion_data, mirrored
from icnn.tasks.completion.energy import load_completion_energy
from icnn.tasks.completion.ensemble import CompletionEnsemble
from icnn.tasks.completion.protocols import apply_protocol
from icnn.tasks.completion.train import CompletionConfig, mean_start, paper_mse, predict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ensemble-run", type=Path, action="append", required=True)
    parser.add_argument("--averaged-run", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    averaged = json.loads((args.averaged_run / "metrics.json").read_text())
    record = averaged["methods"]["averaged"]
    weight = record["cross_fit"]["blend_weight"]
    anchor = load_anchor(args.averaged_run / "averaged" / "anchor.safetensors")
    results = {"averaged_run": str(args.averaged_run), "blend_weight": weight,
               "anchor": record["anchor"], "ensembles": []}
    for run in args.ensemble_run:
        metrics = json.loads((run / "metrics.json").read_text())
        method = metrics["methods"]["bundle_entropy"]
        same = ("images", "n_train", "mask", "protocol")
        if metrics["n_validation"] != 0 or "members" not in method \
                or any(metrics[key] != averaged[key] for key in same):
            raise ValueError(f"expected an ensemble (--ensemble K > 1) trained on all training "
                             f"images (--validation 0) with the averaged run's "
                             f"{', '.join(f'{k} {averaged[k]!r}' for k in same)}, got {run}")
        if metrics["mask"] != "left-half":
            raise ValueError(f"expected the left-half task (a random mask depends on the run's "
                             f"seed), got {metrics['mask']!r} in {run}")
        images = load_images(metrics["images"])
        images, n_train = apply_protocol(images, metrics["protocol"],
                                         metrics["n_train"] if metrics["protocol"] == "paper"
                                         else None)
        data = make_completion_data(images, n_train, metrics["mask"])
        config = CompletionConfig.from_record(method["config"])
        members = []
        for k in range(method["ensemble"]):
            path = run / "bundle_entropy" / f"member{k}" / "model.safetensors"
            members.append(load_completion_energy(path))
        y0 = mean_start(concatenate(data.train, mirrored(data.train)) if config.flip
                        else data.train)
        with torch.no_grad():
            completion = predict(CompletionEnsemble(members), data.test, y0, config.inference)
        values = predict_anchor(anchor, data.test)
        row = {"run": str(run), "seeds": [m["seed"] for m in method["members"]],
               "ensemble_test_mse": paper_mse(completion, data.test),
               "anchor_test_mse": paper_mse(values, data.test),
               "averaged_test_mse": paper_mse(blend(completion, values, weight), data.test)}
        results["ensembles"].append(row)
        print(f"{run}: ensemble {row['ensemble_test_mse']:.1f}, {record['anchor']} "
              f"{row['anchor_test_mse']:.1f}, averaged (weight {weight}) "
              f"{row['averaged_test_mse']:.1f}")
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
