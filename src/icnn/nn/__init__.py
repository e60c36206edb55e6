"""Input convex models: layers, constraints, activations, initialisation, FICNN, PICNN, conv."""

from .activations import ACTIVATIONS, ConvexActivation, make_activation
from .affine import AffineLayer
from .base import ConvexModel
from .conditioned import ConditionedEnergy
from .constraints import project_constrained_
from .conv import ConvFICNN, ConvPICNN
from .energy import ConvexEnergy, EnergyTraits, energy_traits
from .ficnn import FICNN
from .input_checks import validation
from .layers import NonNegativeConv2d, NonNegativeLinear
from .picnn import PICNN
from .weight_decay import constrained_weight_penalty, decay_groups, raw_constrained_parameters

__all__ = [
    "ACTIVATIONS", "AffineLayer", "ConditionedEnergy", "ConvFICNN", "ConvPICNN",
    "ConvexActivation", "ConvexEnergy", "ConvexModel", "EnergyTraits", "energy_traits",
    "FICNN", "NonNegativeConv2d", "NonNegativeLinear", "PICNN", "constrained_weight_penalty",
    "decay_groups", "make_activation", "project_constrained_", "raw_constrained_parameters",
    "validation",
]
