"""icnn: input convex neural networks in PyTorch (Amos, Xu & Kolter, ICML 2017).

Three names get you going: a model (:class:`FICNN`, :class:`PICNN`, :class:`ConvFICNN`,
:class:`ConvPICNN`), :func:`argmin` to optimise over its convex input, and a loss from
:mod:`icnn.losses`. Any module that declares :class:`ConvexEnergy` (its shapes and its
:class:`EnergyTraits`) is accepted by the solvers too.
"""

from .checkpoint import CheckpointError, load, save
from .learn import losses
from .nn import (
    FICNN,
    PICNN,
    ConvexActivation,
    ConvexEnergy,
    ConvexModel,
    ConvFICNN,
    ConvPICNN,
    EnergyTraits,
    energy_traits,
    validation,
)
from .nn.check import ConvexityReport, check_convexity
from .potentials import ConjugateResult, conjugate, gradient_map
from .solvers import Argmin, ArgminResult, Box, argmin

__version__ = "0.1.0"

__all__ = [
    "FICNN", "PICNN", "ConvFICNN", "ConvPICNN", "CheckpointError", "ConvexActivation",
    "ConvexEnergy", "ConvexModel", "ConvexityReport", "EnergyTraits", "energy_traits",
    "Argmin", "ArgminResult", "Box", "argmin", "check_convexity", "losses", "load", "save", "validation",
    "ConjugateResult", "conjugate", "gradient_map", "__version__",
]


def __getattr__(name: str):
    """``icnn.ot`` (neural optimal transport) is imported on first use, not with ``icnn``."""
    if name == "ot":
        import importlib

        return importlib.import_module(".ot", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
