"""Convex potentials: gradient maps (Brenier maps) and convex conjugates, built on the solvers.

- :func:`gradient_map` — ``T(y, x) = grad_y f(x, y)``, differentiable, with Hessian-vector
  products;
- :func:`conjugate` — ``f^*(z)``, its maximiser ``grad f^*(z)``, residuals and certificates,
  with envelope-theorem gradients;
- :func:`gaussian_map_init` — start ``grad f`` at the identity or the Gaussian OT map (models
  with ``quadratic_rank > 0``).
"""

from .conjugate import (
    ConjugateResult,
    UnconvergedConjugateError,
    UnconvergedConjugateWarning,
    conjugate,
)
from .gaussian_init import GaussianMapInit, gaussian_map, gaussian_map_init
from .gradient_map import GradientMap, gradient_map
from .tilted_energy import TiltedEnergy

__all__ = ["ConjugateResult", "GaussianMapInit", "GradientMap", "TiltedEnergy", "UnconvergedConjugateError",
           "UnconvergedConjugateWarning", "conjugate",
           "gaussian_map", "gaussian_map_init", "gradient_map"]
