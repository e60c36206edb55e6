"""``icnn infer``: load a checkpoint and solve ``argmin_y f(x, y)`` for given inputs."""

from __future__ import annotations

import argparse

HELP = "load a checkpoint and solve argmin_y f(x, y) for inputs from a .npy/.npz file"
DESCRIPTION = (
    "Load a model written by icnn.save (e.g. DIR/model.safetensors of `icnn train`) and solve "
    "y* = argmin_{lo <= y <= hi} f(x, y) with icnn.argmin. --inputs is a .npy array (the "
    "contexts x for a PICNN; start points y0 for an FICNN) or a .npz with arrays x, y0, and "
    "optionally fixed_mask (bool) and fixed_values to keep some coordinates of y. Writes a "
    ".npz with y, value, converged, iterations (and gap when the method certifies one), or, "
    "for an --out ending in .npy, the solutions y alone."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the flags of ``icnn infer`` to ``parser``, each with a help text."""
    parser.add_argument("--checkpoint", required=True, help="model file written by icnn.save")
    parser.add_argument("--inputs", default=None,
                        help=".npy or .npz inputs (see above); optional for an FICNN")
    parser.add_argument("--batch", type=int, default=1,
                        help="number of problems for an FICNN without --inputs")
    parser.add_argument("--out", required=True, help="output file (.npz, or .npy for y only)")
    parser.add_argument("--method", default="auto",
                        choices=["auto", "pgd", "lbfgs", "bundle", "bundle_entropy", "exact"],
                        help="argmin method")
    parser.add_argument("--lo", type=float, default=None,
                        help="lower bound of every coordinate of y (default: unbounded, which "
                             "needs a strongly convex model)")
    parser.add_argument("--hi", type=float, default=None,
                        help="upper bound of every coordinate of y (default: unbounded, which "
                             "needs a strongly convex model)")
    parser.add_argument("--tol", type=float, default=None,
                        help="solver tolerance (default: the method's)")
    parser.add_argument("--max-iter", type=int, default=None,
                        help="solver iteration limit (default: the method's)")


def run(args: argparse.Namespace) -> int:
    """Run ``icnn infer`` with the parsed ``args``; return the exit status (0 on success)."""
    import math
    from pathlib import Path

    import numpy as np
    import torch

    from ..checkpoint import atomic_write, load
    from ..nn.energy import energy_traits
    from ..solvers import argmin
    from ..solvers.domain import Box

    _check_bounds(args.lo, args.hi, args.batch)
    model = load(args.checkpoint)
    model.eval()
    bounded = args.lo is not None and args.hi is not None
    if not bounded and energy_traits(model).strong_convexity == 0.0:
        raise ValueError(
            "expected --lo and --hi, or a strongly convex model: the domain of y is unbounded "
            f"({_domain_text(args.lo, args.hi)}) and {args.checkpoint} has strong_convexity 0, "
            "so the minimum may not exist; pass --lo and --hi"
        )
    dtype = model.dtype
    arrays: dict[str, np.ndarray] = {}
    if args.inputs:
        path = Path(args.inputs)
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
            unknown = set(arrays) - {"x", "y0", "fixed_mask", "fixed_values"}
            if unknown:
                raise ValueError(f"{path}: unexpected arrays {sorted(unknown)}; expected x, y0, "
                                 "fixed_mask, fixed_values")
        elif path.suffix == ".npy":
            key = "x" if model.has_context else "y0"
            arrays = {key: np.load(path, allow_pickle=False)}
        else:
            raise ValueError(f"--inputs must be .npy or .npz, got {path.suffix!r}")

    def tensor(name: str):
        if name not in arrays:
            return None
        return torch.as_tensor(arrays[name], dtype=dtype)

    x, y0 = tensor("x"), tensor("y0")
    if model.has_context and x is None:
        raise ValueError(f"this model needs contexts x of shape (batch, "
                         f"{', '.join(map(str, model.context_shape))}); pass --inputs")
    fixed = None
    if "fixed_mask" in arrays:
        if "fixed_values" not in arrays:
            raise ValueError("fixed_mask needs fixed_values in the same .npz")
        fixed = (torch.as_tensor(arrays["fixed_mask"]).bool(), tensor("fixed_values"))
    if x is None and y0 is None and fixed is None:
        y0 = torch.zeros(args.batch, *model.convex_input_shape, dtype=dtype)
        if args.lo is not None or args.hi is not None:
            y0 = y0.clamp(min=args.lo, max=args.hi)  # start inside the box
    domain = None
    if args.lo is not None or args.hi is not None:
        domain = Box(-math.inf if args.lo is None else args.lo,
                     math.inf if args.hi is None else args.hi)
    options = {k: v for k, v in (("tol", args.tol), ("max_iter", args.max_iter)) if v is not None}
    result = argmin(model, x, domain=domain, y0=y0, fixed=fixed, method=args.method, **options)
    out = Path(args.out)

    def _write(path, dump):  # through a file handle, so numpy adds no suffix to the temporary
        def write(tmp):
            with open(tmp, "wb") as handle:
                dump(handle)
        atomic_write(path, write)

    solutions = result.y.detach().cpu().numpy()
    if out.suffix == ".npy":
        _write(out, lambda handle: np.save(handle, solutions))
    else:
        payload = {"y": solutions, "value": result.value.detach().cpu().numpy(),
                   "converged": result.converged.cpu().numpy(),
                   "iterations": np.asarray(result.iterations)}
        if result.gap is not None:
            payload["gap"] = result.gap.detach().cpu().numpy()
        _write(out, lambda handle: np.savez(handle, **payload))
    print(f"solved {len(solutions)} problems with {result.method}: "
          f"{int(result.converged.sum())} converged, mean value "
          f"{float(result.value.mean()):.6g}; wrote {out}")
    return 0


def _check_bounds(lo: float | None, hi: float | None, batch: int) -> None:
    """Refuse non-finite or crossed bounds and a batch below 1, naming what came."""
    import math

    for name, value in (("--lo", lo), ("--hi", hi)):
        if value is not None and not math.isfinite(value):
            raise ValueError(f"expected a finite {name}, got {value}")
    if lo is not None and hi is not None and not lo < hi:
        raise ValueError(f"expected --lo < --hi, got --lo {lo} and --hi {hi}")
    if batch < 1:
        raise ValueError(f"expected --batch >= 1, got {batch}")


def _domain_text(lo: float | None, hi: float | None) -> str:
    if lo is None and hi is None:
        return "neither --lo nor --hi given"
    return f"only {'--lo' if lo is not None else '--hi'} given"
