"""Learning: max-margin loss, learning through the argmin, the trainer, data-parallel runs."""

from ..solvers.entropy import negative_entropy
from .argmin_grad import predict, unrolled_gd
from .distributed import DistContext, init_distributed
from .losses import max_margin
from .margin import LossAugmentedEnergy, hamming_margin
from .seeding import seed_everything
from .trainer import Trainer, TrainerConfig

__all__ = [
    "DistContext", "LossAugmentedEnergy", "Trainer", "TrainerConfig", "hamming_margin",
    "init_distributed", "max_margin", "negative_entropy", "predict", "seed_everything",
    "unrolled_gd",
]
