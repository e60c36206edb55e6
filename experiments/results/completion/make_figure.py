"""Draw ``completions.png`` for all three methods from the saved ensemble members.

``commands.md`` trains bundle entropy and the two GD variants in two processes (one core each),
so each run's own ``completions.png`` shows only its methods. This script rebuilds every method's
ensemble from ``runs/*/<method>/member*/model.safetensors`` and draws one figure with all of them.

    python experiments/results/completion/make_figure.py
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from icnn.data import default_data_dir
from icnn.data.images import load_images
from icnn.tasks.completion.data import concatenate, make_completion_data, mirrored
from icnn.tasks.completion.energy import load_completion_energy
from icnn.tasks.completion.ensemble import CompletionEnsemble
from icnn.tasks.completion.figure import save_completions_figure
from icnn.tasks.completion.train import CompletionConfig, mean_start, paper_mse, predict

ROOT = Path(__file__).resolve().parent
METHODS = {"bundle_entropy": "bundle entropy", "gd": "GD", "nonconvex": "non-convex"}


def main() -> None:
    torch.set_num_threads(1)
    images = load_images(default_data_dir() / "olivetti" / "olivettifaces.mat")
    data = make_completion_data(images, 350)
    y0 = mean_start(concatenate(data.train, mirrored(data.train)))
    completions, mse = {}, {}
    for method in METHODS:
        paths = sorted(ROOT.glob(f"runs/*/{method}/member*/model.safetensors"))
        if not paths:
            continue
        members = [load_completion_energy(p, allow_nonconvex=method == "nonconvex")
                   for p in paths]
        config = json.loads((paths[0].parents[2] / "metrics.json").read_text())
        settings = config["methods"][method]["config"]
        inference = CompletionConfig.from_record(settings).inference
        prediction = predict(CompletionEnsemble(members), data.test, y0, inference)
        name = f"{METHODS[method]} x{len(members)}"
        completions[name] = data.test.to_images(prediction)
        mse[name] = paper_mse(prediction, data.test)
        print(f"{name}: test MSE {mse[name]:.1f}")
    shown = torch.linspace(0, len(data.test) - 1, 12).round().long()
    out = save_completions_figure(
        ROOT / "completions.png", data.test.observed_images(0.5)[shown], data.test.images[shown],
        {k: v[shown] for k, v in completions.items()}, mse=mse,
        title="Olivetti test completions (left half predicted); MSE in 0-255 units")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
