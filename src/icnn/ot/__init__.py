"""Neural optimal transport with ICNN potentials (issue 15): ``T = ∇f`` pushes P onto Q.

- data: :func:`load_samples` (``.npy``), :class:`GaussianPair` (closed form),
  :class:`Mix3toMix10` (the Wasserstein-2 benchmark);
- solvers over one trainer: :func:`fit_transport` with ``OTConfig(solver="mm" | "w2gn" |
  "amortized")``, conditional maps with a context per sample;
- scores: :func:`transport_metrics` (L2-UVP, cos, W2²); baselines: :class:`LinearGaussianMap`,
  :class:`DiscreteOTMap` (POT).

The Gaussian (and identity) start is exact when the output unit holds the map's whole matrix:
with ``quadratic_rank >= D - 1``, or with a full-rank PSD quadratic on each potential's output
(``OTConfig.output_quadratic``, ``"auto"`` by default: on exactly when the rank is below D - 1).
Without either (``output_quadratic="off"``) it holds a rank-R part, an
:class:`InexactStartWarning` is raised and ``metrics.json`` records ``start_error``,
``start_exact`` and ``start_warning``. The Mix3toMix10 runs at D >= 4 recorded in
``experiments/results/ot`` predate ``output_quadratic``: they used ``--quadratic-rank 1`` and that
inexact start (their ``start_error`` 0.67 at D = 4, 0.88 at D = 16; rerun them with
``--output-quadratic off`` to reproduce); the recorded Gaussian-pair runs used rank D - 1, which
``"auto"`` leaves unchanged.
A run folder's ``train/identity.json`` (:mod:`icnn.ot.identity`) holds the settings and data a
``--resume`` must match; a diverging loss raises :class:`DivergenceError` (a ``ValueError``).
"""

from .baselines import DiscreteOTMap, LinearGaussianMap
from .checkpoint import load_transport, save_transport
from .fit import (
    SOLVERS,
    DivergenceError,
    FitResult,
    InexactStartWarning,
    OTConfig,
    fit_transport,
    inverse_map,
)
from .gaussian_pair import GaussianPair
from .metrics import GroundTruth, cos_similarity, l2_uvp, transport_metrics, w2_squared
from .samples import check_pair, check_samples, load_samples
from .transport_model import PotentialConfig, TransportModel
from .w2bench import Mix3toMix10

__all__ = [
    "SOLVERS", "DiscreteOTMap", "DivergenceError", "FitResult", "GaussianPair", "GroundTruth",
    "InexactStartWarning", "LinearGaussianMap",
    "Mix3toMix10", "OTConfig", "PotentialConfig", "TransportModel", "check_pair", "check_samples",
    "cos_similarity", "fit_transport", "inverse_map", "l2_uvp", "load_samples", "load_transport",
    "save_transport", "transport_metrics", "w2_squared",
]
