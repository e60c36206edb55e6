"""Neural optimal transport with ICNN potentials (issue 15): ``T = ∇f`` pushes P onto Q.

- data: :func:`load_samples` (``.npy``), :class:`GaussianPair` (closed form),
  :class:`Mix3toMix10` (the Wasserstein-2 benchmark);
- solvers over one trainer: :func:`fit_transport` with ``OTConfig(solver="mm" | "w2gn" |
  "amortized")``, conditional maps with a context per sample;
- scores: :func:`transport_metrics` (L2-UVP, cos, W2²); baselines: :class:`LinearGaussianMap`,
  :class:`DiscreteOTMap` (POT).
"""

from .baselines import DiscreteOTMap, LinearGaussianMap
from .checkpoint import load_transport, save_transport
from .fit import SOLVERS, FitResult, OTConfig, fit_transport, inverse_map
from .gaussian_pair import GaussianPair
from .metrics import GroundTruth, cos_similarity, l2_uvp, transport_metrics, w2_squared
from .samples import check_pair, check_samples, load_samples
from .transport_model import PotentialConfig, TransportModel
from .w2bench import Mix3toMix10

__all__ = [
    "SOLVERS", "DiscreteOTMap", "FitResult", "GaussianPair", "GroundTruth", "LinearGaussianMap",
    "Mix3toMix10", "OTConfig", "PotentialConfig", "TransportModel", "check_pair", "check_samples",
    "cos_similarity", "fit_transport", "inverse_map", "l2_uvp", "load_samples", "load_transport",
    "save_transport", "transport_metrics", "w2_squared",
]
