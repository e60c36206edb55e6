"""Inference over the convex input: ``argmin_y f(x, y)`` over a box, batched.

Methods: ``pgd`` (accelerated projected gradient), ``lbfgs`` (projected L-BFGS), ``bundle`` and
``bundle_entropy`` (paper Section 4.3-4.4), ``exact`` (the LP of Section 4.1, via HiGHS), and
``auto``. See :func:`argmin`, and :class:`Argmin` for repeated solves of one model.
"""

from .argmin import METHODS, argmin
from .domain import Box
from .handle import Argmin
from .problem import Problem, build_problem
from .result import ArgminResult

__all__ = ["METHODS", "Argmin", "ArgminResult", "Box", "Problem", "argmin", "build_problem"]
