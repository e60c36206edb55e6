"""``method="auto"``: the fastest reliable method for the model and domain, chosen by measurement.

Measured with ``benchmarks/inference.py`` (BibTeX-size ReLU PICNN, x 1836, y 159, hidden 300-300,
batch 256, ``[0, 1]^159``, float32, 1 torch thread, a shared 2-core machine at load ~5; one run):

=========================  ======  ===========  ==========  ==============  =========
method (1e-3)              time s  certified    worst rel.  evals@1e-3      vs exact
=========================  ======  ===========  ==========  ==============  =========
bundle (certify, tol 1e-3)   0.80  100 % (32)   6.8e-4      8 med, 15 max   55x
bundle (15 iterations)       0.46  --           7.4e-4      8 med, 15 max   96x
lbfgs (certify, 300 it.)     3.9   92 %         6.6e-3      34 med, tail    11x
pgd (certify, 300 it.)       3.0   53 %         1.1e-3      14 med, tail    14x
exact (HiGHS, per example)  43.9   100 %        0           --              1x
scipy L-BFGS-B (per ex.)     8.0   --           4.4e-3      85 (median)     --
=========================  ======  ===========  ==========  ==============  =========

The proximal bundle method is the only one that reaches ``1e-3`` on every example, and certifies
it; projected L-BFGS and projected gradient have a long tail of examples stuck at kinks of the
ReLU energy.

So ``auto`` is ``bundle`` where the bundle method applies and is measured best: a bounded domain
(every free coordinate has finite bounds) and an energy that declares itself piecewise-linear
(:class:`icnn.EnergyTraits`, no strong-convexity term). Everywhere else, smooth or
strongly convex energies and unbounded domains, it is ``lbfgs``, the textbook choice there.
``bundle_entropy`` minimises ``f - H`` and is never chosen silently; ``exact`` is the slow
reference.
"""

from __future__ import annotations

from .problem import Problem


def choose_method(problem: Problem) -> str:
    """The method ``argmin(method="auto")`` runs for ``problem`` (see the module docstring)."""
    if problem.bounded and problem.traits.piecewise_linear:
        return "bundle"
    return "lbfgs"
