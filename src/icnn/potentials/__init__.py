"""Convex potentials: gradient maps (Brenier maps) and convex conjugates, built on the solvers.

- :func:`gradient_map` — ``T(y, x) = grad_y f(x, y)``, differentiable, with Hessian-vector
  products;
- :func:`conjugate` — ``f^*(z)``, its maximiser ``grad f^*(z)``, residuals and certificates,
  with envelope-theorem gradients.
"""

from .conjugate import ConjugateResult, conjugate
from .gradient_map import GradientMap, gradient_map
from .tilted_energy import TiltedEnergy

__all__ = ["ConjugateResult", "GradientMap", "TiltedEnergy", "conjugate", "gradient_map"]
