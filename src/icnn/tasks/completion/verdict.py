"""The validation verdict: a trained predictor against every baseline measured in the run.

A predictor (the anchored energy, or any other variant) is compared with each baseline on the
same validation images by its paired per-image gain ``baseline error - predictor error``. The
images of one person are not independent, so the gain's standard error is clustered by person
(:func:`icnn.tasks.completion.folds.clustered_mean`), and with ``G`` validation people the
t statistic has ``G - 1`` degrees of freedom: the predictor *beats* a baseline when its mean gain
exceeds ``t_{G-1}(1 - level)`` standard errors, ``level = 1 - Phi(z)`` the one-sided level of
``--fallback-z`` (z = 2: 2.3 %; with two people, one degree of freedom, the critical value is
13.97 standard errors instead of 2). With one person there is no standard error and the
predictor beats nobody. The predictor is *selected* only when it beats every baseline; else the
baseline with the lowest validation MSE is (the predictor's validation MSE is the best of its
epochs, so a bare "lower" would favour it by chance).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from torch import Tensor

from .folds import clustered_mean


def student_t_cdf(t: float, df: int) -> float:
    """``P(T <= t)`` for Student's t with an integer number ``df >= 1`` of degrees of freedom.

    The closed form of Abramowitz & Stegun 26.7.3-4 (a finite sum of ``df / 2`` terms).

    Raises:
        ValueError: ``df`` not an int >= 1.
    """
    if isinstance(df, bool) or not isinstance(df, int) or df < 1:
        raise ValueError(f"expected degrees of freedom that are an int >= 1, got {df!r}")
    if math.isinf(t):
        return 1.0 if t > 0 else 0.0
    theta = math.atan(t / math.sqrt(df))
    c2 = math.cos(theta) ** 2
    if df % 2 == 1:
        total, term = 0.0, math.cos(theta)
        for k in range(1, (df - 1) // 2 + 1):
            total += term
            term *= c2 * (2 * k) / (2 * k + 1)
        inside = 2.0 / math.pi * (theta + math.sin(theta) * total)
    else:
        total, term = 0.0, 1.0
        for k in range(1, df // 2 + 1):
            total += term
            term *= c2 * (2 * k - 1) / (2 * k)
        inside = math.sin(theta) * total
    return 0.5 * (1.0 + inside)


def t_critical(z: float, df: int) -> float:
    """The one-sided Student-t critical value at the level of ``z`` standard normal deviations.

    ``t`` with ``P(T_df > t) = P(Z > z)``; it tends to ``z`` as ``df`` grows.

    Raises:
        ValueError: ``z`` not a finite number, or ``df`` not an int >= 1.
    """
    if isinstance(z, bool) or not isinstance(z, int | float) or not math.isfinite(z):
        raise ValueError(f"expected a finite z, got {z!r}")
    target = 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))
    student_t_cdf(0.0, df)  # validates df
    low, high = -1.0, 1.0
    while student_t_cdf(low, df) > target:
        low *= 2.0
    while student_t_cdf(high, df) < target:
        high *= 2.0
    for _ in range(200):
        middle = 0.5 * (low + high)
        if student_t_cdf(middle, df) < target:
            low = middle
        else:
            high = middle
        if high - low <= 1e-12 * max(1.0, abs(middle)):
            break
    return 0.5 * (low + high)


def validation_verdict(candidate: str, errors: Mapping[str, Tensor], first: int, group_size: int,
                       z: float, where: str = "on validation") -> dict[str, Any]:
    """Whether ``candidate`` beats every baseline on validation, and which predictor to ship.

    Args:
        candidate: the trained predictor's name, a key of ``errors``.
        errors: name -> ``(n_val,)`` per-image validation MSE (0-255 units) of the candidate and
            of every baseline measured in the run (the same images, in order).
        first: the stack index of the first validation image (groups count from image 0).
        group_size: images per person.
        z: the one-sided level, in standard normal deviations (``--fallback-z``).
        where: where the errors were measured, for the sentence (``"on validation"`` for a
            hold-out, ``"out of fold"`` for the cross-fit).

    Returns:
        ``{"validation_mse": name -> MSE, "best_on_validation": lowest MSE (ties: the first),
        "comparisons": baseline -> {"val_gain" (mean per-image gain), "stderr" (clustered by
        person; None with one person), "t" (gain / stderr; None without a positive stderr),
        "groups" (people), "dof" (people - 1), "critical" (t critical value, None with one
        person), "beaten"}, "beats_every_baseline",
        "selected": candidate or the baseline with the lowest validation MSE, "verdict": one
        sentence}``.

    Raises:
        ValueError: ``candidate`` not in ``errors``, per-image errors of different shapes, or a
            bad ``z`` / ``group_size``.
    """
    if candidate not in errors:
        raise ValueError(f"expected the candidate {candidate!r} among the predictors "
                         f"{sorted(errors)}, got none")
    shapes = {tuple(e.shape) for e in errors.values()}
    if len(shapes) != 1 or len(next(iter(shapes))) != 1:
        raise ValueError(f"expected per-image validation errors of one shape (n_val,), got "
                         f"{sorted(shapes)}")
    if isinstance(z, bool) or not isinstance(z, int | float) or not math.isfinite(z):
        raise ValueError(f"expected a finite z, got {z!r}")
    val_mse = {name: float(e.mean()) for name, e in errors.items()}
    comparisons: dict[str, dict[str, Any]] = {}
    for name, error in errors.items():
        if name == candidate:
            continue
        mean, stderr, per_group = clustered_mean(error - errors[candidate], first, group_size)
        groups = len(per_group)
        critical = t_critical(z, groups - 1) if groups > 1 else math.inf
        t = mean / stderr if math.isfinite(stderr) and stderr > 0 else None
        comparisons[name] = {"val_gain": mean, "stderr": stderr if math.isfinite(stderr) else None,
                             "t": t, "groups": groups, "dof": groups - 1,
                             "critical": critical if math.isfinite(critical) else None,
                             "beaten": bool(math.isfinite(stderr) and mean > critical * stderr)}
    best = min(val_mse, key=lambda name: val_mse[name])
    beats_all = all(c["beaten"] for c in comparisons.values())
    if beats_all:
        selected = candidate
        verdict = (f"{candidate} beats every measured baseline {where} by more than the "
                   f"t critical value (one-sided level of z = {z}) in standard errors"
                   if comparisons else f"no baseline measured: {candidate} by default")
    else:
        selected = min(comparisons, key=lambda name: val_mse[name])
        losers = [name for name, c in comparisons.items() if not c["beaten"]]
        verdict = (f"{candidate} does not beat {', '.join(losers)} {where} by the t test "
                   f"(z = {z}); the baseline best {where}, {selected} "
                   f"({val_mse[selected]:.1f} vs {val_mse[candidate]:.1f}), is selected")
    return {"validation_mse": val_mse, "best_on_validation": best, "comparisons": comparisons,
            "beats_every_baseline": beats_all, "selected": selected, "verdict": verdict}
