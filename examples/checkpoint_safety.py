"""Loading a checkpoint safely: ``icnn.save`` / ``icnn.load`` round-trip, and what is refused.

A checkpoint is a safetensors file with a JSON header (class name, config, dtype): loading it
never executes code. ``icnn.load`` rebuilds the model and refuses, with a ``CheckpointError``
naming what it expected, a truncated file, a pickle, or weights that would break convexity.
"""

import os
import shutil
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

import icnn
from icnn.learn import seed_everything

OUT = Path(os.environ.get("ICNN_GALLERY_OUT", "build/gallery"))
torch.set_num_threads(1)
seed_everything(0)
folder = Path(tempfile.mkdtemp())

model = icnn.FICNN(3, hidden=[16, 16], constraint="project")
path = icnn.save(model, folder / "model.safetensors", metadata={"note": "gallery"})
loaded = icnn.load(path)
y = torch.randn(200, 3)
with torch.no_grad():
    assert torch.equal(model(y), loaded(y)), "a round trip is exact"
print(f"round trip exact; metadata {icnn.checkpoint.load_metadata(path)}")

data = path.read_bytes()
(folder / "truncated.safetensors").write_bytes(data[: len(data) // 2])
torch.save(model.state_dict(), folder / "pickle.safetensors")  # a pickle: never unpickled
with torch.no_grad():
    model.z_layers[0].weight[0, 0] = -1.0  # breaks W^(z) >= 0 (the "project" constraint)
icnn.save(model, folder / "negative.safetensors")
outcomes = [("model.safetensors", "loaded, outputs identical")]
for name in ["truncated.safetensors", "pickle.safetensors", "negative.safetensors"]:
    try:
        icnn.load(folder / name)
    except icnn.CheckpointError as error:
        message = str(error).replace(str(folder) + "/", "")
        outcomes.append((name, "refused: " + message))
    else:
        raise AssertionError(f"{name} was loaded")
for name, outcome in outcomes:
    print(f"{name:>22}: {outcome}")
assert "must be >= 0" in outcomes[-1][1], "a negative W^(z) is named"

fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6), gridspec_kw={"width_ratios": [1, 2]})
line = torch.linspace(-3, 3, 200).unsqueeze(1) * torch.ones(1, 3)
with torch.no_grad():
    left.plot(line[:, 0], loaded(line), lw=3, label="loaded")
    left.plot(line[:, 0], icnn.load(path)(line), "--", label="loaded again")
left.set_xlabel("t, along y = (t, t, t)")
left.set_title("round trip: identical")
left.legend(fontsize=8)
right.axis("off")
wrapped = [(n, "\n".join(o[i:i + 80] for i in range(0, min(len(o), 240), 80))) for n, o in outcomes]
table = right.table(cellText=wrapped, colLabels=["file", "icnn.load"], loc="center",
                    cellLoc="left", colWidths=[0.22, 0.78])
table.auto_set_font_size(False)
table.set_fontsize(7)
table.scale(1, 3.2)
right.set_title("what icnn.load refuses")
fig.tight_layout()
OUT.mkdir(parents=True, exist_ok=True)
fig.savefig(OUT / "checkpoint_safety.png", dpi=110)
print(f"wrote {OUT / 'checkpoint_safety.png'}")
shutil.rmtree(folder)
