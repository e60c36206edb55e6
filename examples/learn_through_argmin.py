"""Learning through the argmin: the prediction is ``y_hat = argmin_y f(x, y)`` and the loss is on it.

A toy multi-label problem: 8 labels of a 10-d context, ``y_k = 1[w_k . x > 0]``. A PICNN energy is
trained so that its argmin over ``[0, 1]^8`` predicts the labels (paper Section 5.2): the bundle
entropy method solves ``min f - H`` and ``differentiable="implicit"`` attaches the gradient of
Proposition 3, so a binary cross-entropy on ``y_hat`` backpropagates into the weights.
"""

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

import icnn
from icnn.learn import seed_everything

FAST = os.environ.get("ICNN_GALLERY_FAST") == "1"
OUT = Path(os.environ.get("ICNN_GALLERY_OUT", "build/gallery"))
torch.set_num_threads(1)
seed_everything(0)

weights = torch.randn(8, 10)
x_train, x_test = torch.randn(512, 10), torch.randn(512, 10)
y_train, y_test = (x_train @ weights.T > 0).float(), (x_test @ weights.T > 0).float()
box = icnn.Box(0.0, 1.0)
model = icnn.PICNN(x_dim=10, y_dim=8, hidden=[32, 32], activation="relu")
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)


def test_accuracy() -> float:
    """Label accuracy of the thresholded argmin on the test contexts."""
    with torch.no_grad():
        y_hat = icnn.argmin(model, x_test, domain=box, method="bundle_entropy").y
    return float(((y_hat > 0.5).float() == y_test).float().mean())


before, curve = test_accuracy(), []
for _ in range(30 if FAST else 120):
    index = torch.randint(0, 512, (64,))
    y_hat = icnn.argmin(model, x_train[index], domain=box, method="bundle_entropy",
                        differentiable="implicit").y  # y_hat: (64, 8), attached to the weights
    loss = F.binary_cross_entropy(y_hat.clamp(1e-6, 1 - 1e-6), y_train[index])
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    curve.append(float(loss.detach()))
after = test_accuracy()
print(f"training loss {curve[0]:.3f} -> {curve[-1]:.3f}; test label accuracy {before:.3f} -> {after:.3f}")
first, last = sum(curve[:5]) / 5, sum(curve[-5:]) / 5
assert last < (0.98 if FAST else 0.9) * first, f"the loss did not go down ({first:.3f} -> {last:.3f})"
assert after > before + (0.0 if FAST else 0.2), f"test accuracy {before:.3f} -> {after:.3f}"

fig, ax = plt.subplots(figsize=(6.4, 4))
ax.plot(curve, label=f"test label accuracy {before:.2f} -> {after:.2f}")
ax.set_xlabel("Adam step (batch 64)")
ax.set_ylabel("binary cross-entropy of argmin prediction")
ax.set_title("Training a PICNN through its argmin")
ax.legend(fontsize=8)
fig.tight_layout()
OUT.mkdir(parents=True, exist_ok=True)
fig.savefig(OUT / "learn_through_argmin.png", dpi=110)
print(f"wrote {OUT / 'learn_through_argmin.png'}")
