"""Image completion (paper Section 6.3).

Complete the missing part of a face with a conv PICNN, ``ŷ = argmin_y f(x, y)``, trained by differentiating
through the inference.

The CLI is ``icnn completion`` (:mod:`.command`); in Python::

    from icnn.data import load_olivetti
    from icnn.tasks.completion import CompletionConfig, make_completion_data, train_completion

    data = make_completion_data(load_olivetti(path), n_train=350)   # the paper's protocol
    result = train_completion(data, CompletionConfig(variant="bundle_entropy"))
    result.test_mse                                                  # 0-255 units

``icnn completion`` also fits baselines (mean image, ridge, RBF kernel ridge, the conv net as a
direct regressor; :mod:`.baselines`) chosen by cross-validation over people (:mod:`.crossval`),
and by default trains the energy anchored to the best of them (:mod:`.anchor`), validated by a
verdict cross-fitted over every training person (:mod:`.crossfit`, :mod:`.verdict`): when it does
not beat every baseline, the baseline best out of fold ships instead.
"""

from .anchor import AnchoredEnergy
from .baselines import BaselineResult, fit_baselines, fit_kernel_ridge, fit_ridge
from .data import CompletionData, CompletionSplit, make_completion_data, parse_mask
from .energy import CompletionEnergy, load_completion_energy
from .inference import InferenceConfig, complete
from .train import CompletionConfig, CompletionResult, paper_mse, train_completion

__all__ = [
    "AnchoredEnergy", "BaselineResult", "fit_baselines", "fit_kernel_ridge", "fit_ridge",
    "CompletionConfig", "CompletionData", "CompletionEnergy", "CompletionResult",
    "CompletionSplit", "InferenceConfig", "complete", "make_completion_data", "paper_mse",
    "load_completion_energy", "parse_mask", "train_completion",
]
