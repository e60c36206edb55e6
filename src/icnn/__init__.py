"""icnn: input convex neural networks in PyTorch (Amos, Xu & Kolter, ICML 2017).

Three names get you going: a model (:class:`FICNN`, :class:`PICNN`, :class:`ConvFICNN`,
:class:`ConvPICNN`), :func:`argmin` to optimise over its convex input, and a loss from
:mod:`icnn.losses`.
"""

from .checkpoint import CheckpointError, load, save
from .nn import FICNN, PICNN, ConvexActivation, ConvexModel, ConvFICNN, ConvPICNN, validation
from .nn.check import ConvexityReport, check_convexity

__version__ = "0.1.0"

__all__ = [
    "FICNN", "PICNN", "ConvFICNN", "ConvPICNN", "CheckpointError", "ConvexActivation",
    "ConvexModel", "ConvexityReport", "check_convexity", "load", "save", "validation", "__version__",
]


def __getattr__(name: str):
    # Late-bound names whose modules land in other layers (imports run downward only).
    if name in ("argmin", "Box", "ArgminResult"):
        from . import solvers

        return getattr(solvers, name)
    if name == "losses":
        from .learn import losses

        return losses
    raise AttributeError(f"module 'icnn' has no attribute {name!r}")
