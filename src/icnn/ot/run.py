"""The ``icnn ot`` run: data, fit, scores, files.

Kept apart from argument parsing so the benchmark and the tests call the same code as the command.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..checkpoint import atomic_write
from .amortized import ConjugateStats, refined_inverse
from .baselines import LinearGaussianMap
from .checkpoint import load_transport, save_transport
from .fit import START_TOLERANCE, FitResult, OTConfig, describe, fit_transport, inverse_map, start_warning
from .metrics import GroundTruth, transport_metrics, w2_squared
from .problems import make_problem
from .samples import load_samples

__all__ = ["OTRunSpec", "apply_map", "run_ot"]

DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass(frozen=True)
class OTRunSpec:
    """Where the samples come from and where the run computes.

    Attributes:
        source, target: ``.npy`` files of shape ``(N, D)``, ``(M, D)`` (or both None).
        source_context, target_context: ``.npy`` contexts ``(N, C)``, ``(M, C)`` or None.
        benchmark: ``"gaussian:D"`` or ``"mix3tomix10:D"`` instead of files.
        samples: points drawn from each benchmark distribution.
        pair_seed: seed of the Gaussian pair (None: the training seed, as the recorded runs did).
        dtype: ``"float32"`` or ``"float64"``; device: a torch device string.
        threads: torch CPU threads (None: leave as is); resume: continue from the run folder.
    """

    source: str | None = None
    target: str | None = None
    source_context: str | None = None
    target_context: str | None = None
    benchmark: str | None = None
    samples: int = 16384
    pair_seed: int | None = None
    dtype: str = "float32"
    device: str = "cpu"
    threads: int | None = None
    resume: bool = False


def _data(spec: OTRunSpec, seed: int, dtype: torch.dtype
          ) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None, GroundTruth | None]:
    files = spec.source is not None or spec.target is not None
    if files == (spec.benchmark is not None):
        raise ValueError("expected either --source and --target files or --benchmark, got "
                         f"{'both' if files else 'neither'}")
    if spec.benchmark is not None:
        if spec.source_context is not None or spec.target_context is not None:
            raise ValueError("expected contexts only with --source/--target files, got them with --benchmark")
        source, target, truth = make_problem(spec.benchmark, spec.samples, seed, dtype=dtype,
                                             pair_seed=spec.pair_seed)
        return source, target, None, None, truth
    if spec.pair_seed is not None:
        raise ValueError("expected --pair-seed only with --benchmark gaussian:D, got it with files")
    if spec.source is None or spec.target is None:
        raise ValueError(f"expected both --source and --target, got only "
                         f"{'--source' if spec.source is not None else '--target'}")
    source = load_samples(spec.source, "source", dtype=dtype)
    target = load_samples(spec.target, "target", dtype=dtype)
    contexts = [None if path is None else load_samples(path, name, dtype=dtype, min_samples=1)
                for path, name in ((spec.source_context, "source context"),
                                   (spec.target_context, "target context"))]
    return source, target, contexts[0], contexts[1], None


def run_ot(spec: OTRunSpec, config: OTConfig, out_dir: str | os.PathLike) -> dict[str, Any]:
    """Fit the map of ``spec`` with ``config`` and write the run folder; return metrics.json's dict.

    Files: ``metrics.json``, ``curve.csv``, ``transport.safetensors``, ``train/`` (the trainer's
    checkpoints and history) and, for D = 2 without contexts, ``transport.png``.

    Raises:
        ValueError: bad data or settings (one line each, see :mod:`icnn.ot.samples`).
        FileNotFoundError: a missing input file.
    """
    if spec.dtype not in DTYPES:
        raise ValueError(f"expected dtype in {tuple(DTYPES)}, got {spec.dtype!r}")
    if spec.threads is not None:
        if spec.threads < 1:
            raise ValueError(f"expected --threads >= 1, got {spec.threads}")
        torch.set_num_threads(spec.threads)
    try:
        device = torch.device(spec.device)
    except RuntimeError as error:
        raise ValueError(f"expected a torch device such as cpu or cuda:0, got {spec.device!r}") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"expected an available CUDA device for --device {spec.device}, got none")
    started = time.perf_counter()
    dtype = DTYPES[spec.dtype]
    source, target, source_context, target_context, truth = _data(spec, config.seed, dtype)
    moved = [None if t is None else t.to(device) for t in (source, target, source_context, target_context)]
    out = _run_folder(out_dir)
    fit = fit_transport(moved[0], moved[1], config, source_context=moved[2], target_context=moved[3],
                        truth=None if truth is None else _to(truth, device), out_dir=out / "train",
                        resume=spec.resume, data_description=_describe_data(spec))
    report = _report(fit, config, spec, moved, truth, device)
    report["wall_seconds"] = time.perf_counter() - started  # this invocation (data, fit, scores)
    save_transport(fit.model, config, out / "transport.safetensors",
                   info={"benchmark": spec.benchmark, "dim": int(source.shape[1])})
    _write_curve(fit.history, out / "curve.csv")
    if source.shape[1] == 2 and source_context is None:
        from .plot import plot_transport_2d

        with torch.no_grad():
            pushed = fit.model.forward_map(moved[0][:2048]).cpu()
        plot_transport_2d(source[:2048], target[:2048], pushed, out / "transport.png",
                          title=f"{config.solver} on {spec.benchmark or 'samples'}")
        report["figure"] = "transport.png"
    text = json.dumps(report, indent=1)
    atomic_write(out / "metrics.json", lambda tmp: Path(tmp).write_text(text))
    return report


def _run_folder(out_dir: str | os.PathLike) -> Path:
    """Create the run folder (one line on a path that is a file or cannot be created)."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"expected --out to be a folder (new or existing), got the file {out}")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ValueError(f"expected --out to be a folder that can be created, got {out} "
                         f"({error.strerror or error})") from None
    return out


def _describe_data(spec: OTRunSpec) -> dict[str, Any]:
    """Where the samples come from (part of the run's identity, :mod:`icnn.ot.identity`)."""
    if spec.benchmark is not None:
        return {"benchmark": spec.benchmark, "samples": spec.samples, "pair_seed": spec.pair_seed}
    return {"files": [None if p is None else os.path.basename(p) for p in
                      (spec.source, spec.target, spec.source_context, spec.target_context)]}


def _to(truth: GroundTruth, device: torch.device) -> GroundTruth:
    return GroundTruth(truth.source.to(device), truth.mapped.to(device), truth.source_var,
                       truth.target_var, truth.cost)


def _report(fit: FitResult, config: OTConfig, spec: OTRunSpec, data: list[Tensor | None],
            truth: GroundTruth | None, device: torch.device) -> dict[str, Any]:
    source, target, source_context, _ = data
    model = fit.model.eval()
    pairs = max(source.shape[0], target.shape[0])
    steps = config.epochs * -(-pairs // config.batch_size)
    report: dict[str, Any] = {
        "solver": config.solver, "benchmark": spec.benchmark, "dim": int(source.shape[1]),
        "source_samples": int(source.shape[0]), "target_samples": int(target.shape[0]),
        "conditional": source_context is not None, "seed": config.seed, "steps": steps,
        # training time of every epoch (resumed ones too), per-epoch evaluation excluded
        "train_seconds": fit.seconds, "seconds_per_step": fit.seconds / max(steps, 1),
        "eval_seconds": float(sum(r.get("eval_seconds", 0.0) for r in fit.history)),
        "resumed": spec.resume,
        "config": describe(config), "dtype": spec.dtype, "device": str(device),
        "start_error": fit.start_error,
        "start_exact": None if fit.start_error is None else fit.start_error <= START_TOLERANCE,
    }
    if fit.start_error is not None and fit.start_error > START_TOLERANCE:
        report["start_warning"] = start_warning(config, int(source.shape[1]), fit.start_error)
    conjugate_training = [r for r in fit.history if "conjugate_iterations" in r]
    if conjugate_training:
        report["train_conjugate_iterations_mean"] = float(np.mean(
            [r["conjugate_iterations"] for r in conjugate_training]))
        report["train_conjugate_residual_max"] = max(r["conjugate_residual_max"] for r in conjugate_training)
        report["train_conjugate_seconds_per_step"] = float(np.mean(
            [r["conjugate_seconds_per_step"] for r in conjugate_training]))
    evaluation = source[: config.eval_points]
    evaluation_context = None if source_context is None else source_context[: config.eval_points]
    with torch.no_grad():
        pushed = model.forward_map(evaluation, evaluation_context)
    report["w2_squared_estimate"] = w2_squared(evaluation, pushed)
    if truth is not None:
        stats = ConjugateStats()
        truth = _to(truth, device)
        scores = transport_metrics(lambda p: _forward(model, p),
                                   lambda p: inverse_map(model, config, p, stats=stats), truth)
        report.update(scores)
        conjugate = stats.summary()
        if conjugate:
            report["inverse_conjugate"] = conjugate
        linear = LinearGaussianMap(source, target)
        report["baseline_linear"] = transport_metrics(linear, linear.inverse, truth)
    return report


def _forward(model, points: Tensor) -> Tensor:
    with torch.no_grad():
        return model.forward_map(points)


def _write_curve(history: list[dict[str, float]], path: Path) -> None:
    columns: list[str] = []
    for record in history:
        columns += [k for k in record if k not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    atomic_write(path, lambda tmp: Path(tmp).write_text(buffer.getvalue()))


def apply_map(checkpoint: str | os.PathLike, inputs: str | os.PathLike, output: str | os.PathLike, *,
              context: str | os.PathLike | None = None, inverse: bool = False,
              allow_unconverged: bool = False, unconverged: list[int] | None = None) -> int:
    """Apply a fitted map (or its inverse) to the points of a ``.npy`` file.

    Apply the fitted map of ``checkpoint`` (or its inverse) to the ``(n, D)`` points of the
    ``.npy`` file ``inputs`` and write ``(n, D)`` to ``output``; return ``n``. The inverse of an
    amortised model is a conjugate solve per point: points whose solve did not reach the
    checkpoint's tolerance refuse the whole call unless ``allow_unconverged`` (then their rows
    are the solver's last iterates and their count is appended to ``unconverged``).

    Raises:
        ValueError: points of the wrong width, NaN points, a context missing or given wrongly,
            a file that is not an ``icnn ot`` checkpoint, an output path that is a folder or not
            writable, or unconverged conjugate solves without ``allow_unconverged``;
            FileNotFoundError: a missing file.
    """
    model, config, _ = load_transport(checkpoint)
    dtype = next(model.parameters()).dtype
    points = load_samples(inputs, "input", dtype=dtype, min_samples=1)
    dim = model.config.dim
    if points.shape[1] != dim:
        raise ValueError(f"expected input points of width D = {dim} (the checkpoint's), got "
                         f"{points.shape[1]}")
    ctx = None
    if model.conditional:
        if context is None:
            raise ValueError(f"expected --context (n, {model.config.context_dim}) for this conditional "
                             "map, got none")
        ctx = load_samples(context, "context", dtype=dtype, min_samples=1)
        if ctx.shape != (points.shape[0], model.config.context_dim):
            raise ValueError(f"expected a context of shape ({points.shape[0]}, {model.config.context_dim}), "
                             f"got {tuple(ctx.shape)}")
    elif context is not None:
        raise ValueError("expected no --context for this unconditional map, got one")
    if inverse and model.config.g_kind == "mlp":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # counted and reported below, in one line
            result = refined_inverse(model, points, ctx, tol=config.conjugate_tol,
                                     max_iter=config.conjugate_max_iter)
        mapped = result.y.detach()
        failed = int((~result.converged).sum())
        if failed and not allow_unconverged:
            raise ValueError(f"expected every inverse point's conjugate solve to reach the relative residual "
                             f"{config.conjugate_tol:g} within {config.conjugate_max_iter} iterations, got "
                             f"{failed} of {points.shape[0]} unconverged (largest residual "
                             f"{float(result.residual.max()):.3g}); nothing written (pass "
                             "--allow-unconverged to write them anyway)")
        if unconverged is not None:
            unconverged.append(failed)
    elif inverse:
        mapped = inverse_map(model, config, points, ctx)
    else:
        with torch.no_grad():
            mapped = model.forward_map(points, ctx)
    array = mapped.detach().cpu().numpy()
    if Path(output).is_dir():
        raise ValueError(f"expected --out to be a .npy file name, got the folder {output}")
    try:
        atomic_write(output, lambda tmp: _save_npy(tmp, array))
    except OSError as error:
        raise ValueError(f"expected --out to be a writable .npy file name, got {output} "
                         f"({error.strerror or type(error).__name__})") from None
    return int(points.shape[0])


def _save_npy(path: str, array: np.ndarray) -> None:
    with open(path, "wb") as handle:  # a handle: np.save would append .npy to the temporary name
        np.save(handle, array)
