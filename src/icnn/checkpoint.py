"""Checkpoints: safetensors weights plus the constructor config, written atomically.

Loading never executes code: the file holds tensors and a JSON header; the model class is looked
up by name in a fixed registry of the library's own models. A checkpoint whose constrained
weights are negative or non-finite, or whose bytes are truncated or corrupt, is refused.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from . import nn as icnn_nn
from .nn.check import structural_issues

FORMAT_VERSION = "1"
MODEL_CLASSES = ("FICNN", "PICNN", "ConvFICNN", "ConvPICNN")


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded safely."""


def _model_class(name: str) -> type[nn.Module]:
    cls = getattr(icnn_nn, name, None) if name in MODEL_CLASSES else None
    if cls is None:
        raise CheckpointError(f"checkpoint names model class {name!r}; expected one of "
                              f"{[n for n in MODEL_CLASSES if hasattr(icnn_nn, n)]}")
    return cls


def atomic_write(path: str | os.PathLike, write: Any) -> Path:
    """Call ``write(tmp_path)`` then rename the temporary file onto ``path`` (atomic on POSIX)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save(model: nn.Module, path: str | os.PathLike, metadata: dict[str, Any] | None = None) -> Path:
    """Write ``model`` to ``path`` (safetensors) with its class name, config and ``metadata``.

    Args:
        model: an icnn model (``FICNN``, ``PICNN``, ``ConvFICNN``, ``ConvPICNN``).
        path: destination file; written to a temporary file first, then renamed.
        metadata: extra JSON-serialisable information stored in the header.
    """
    name = type(model).__name__
    _model_class(name)
    config = getattr(model, "config", None)
    if config is None:
        raise ValueError(f"{name} has no config; only icnn models can be saved with icnn.save")
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    header = {
        "icnn_format": FORMAT_VERSION,
        "model_class": name,
        "config": json.dumps(config),
        "dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
        "metadata": json.dumps(metadata or {}),
    }
    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=header))


def read_header(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON header of a checkpoint: ``model_class``, ``config``, ``dtype``, ``metadata``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        with open(path, "rb") as handle:
            size = int.from_bytes(handle.read(8), "little")
            if size <= 0 or size > path.stat().st_size - 8:
                raise CheckpointError(f"{path} is not a valid safetensors file (truncated or "
                                      f"corrupt header: {size} header bytes announced)")
            raw = json.loads(handle.read(size))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{path} has a corrupt header: {error}") from error
    meta = raw.get("__metadata__") or {}
    if meta.get("icnn_format") != FORMAT_VERSION:
        raise CheckpointError(f"{path} is not an icnn checkpoint (format "
                              f"{meta.get('icnn_format')!r}, expected {FORMAT_VERSION!r})")
    try:
        return {
            "model_class": meta["model_class"],
            "config": json.loads(meta["config"]),
            "dtype": meta.get("dtype", "float32"),
            "metadata": json.loads(meta.get("metadata", "{}")),
        }
    except (KeyError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path} has an incomplete icnn header: {error}") from error


def load(path: str | os.PathLike, map_location: str | torch.device = "cpu", *,
         allow_nonconvex: bool = False) -> nn.Module:
    """Rebuild the model saved at ``path``; refuse corrupt or non-convex checkpoints.

    Args:
        path: a file written by :func:`save`.
        map_location: device to load onto.
        allow_nonconvex: accept the explicit non-convex ablation (``ConvPICNN(convex=False)``);
            negative constrained weights are refused regardless.

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointError: truncated/corrupt file, unknown class, missing or extra tensors,
            non-finite values, or negative constrained weights.
    """
    header = read_header(path)
    cls = _model_class(header["model_class"])
    try:
        tensors = load_file(str(path), device=str(map_location))
    except (SafetensorError, OSError, RuntimeError) as error:
        raise CheckpointError(f"{path} is truncated or corrupt: {error}") from error
    for key, value in tensors.items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise CheckpointError(f"{path}: tensor {key!r} has NaN/inf entries")
    dtype = getattr(torch, header["dtype"], None)
    if not isinstance(dtype, torch.dtype):
        raise CheckpointError(f"{path}: unknown dtype {header['dtype']!r}")
    try:
        model = cls(**header["config"]).to(device=map_location, dtype=dtype)
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: config does not build a {cls.__name__}: {error}") from error
    try:
        model.load_state_dict(tensors, strict=True)
    except (RuntimeError, ValueError) as error:
        raise CheckpointError(f"{path}: weights do not fit the model: {error}") from error
    issues = structural_issues(model)
    if allow_nonconvex and getattr(model, "is_convex", True) is False:
        issues = [issue for issue in issues if "convex=False" not in issue]
    if issues:
        raise CheckpointError(f"{path}: refusing a non-convex checkpoint: {'; '.join(issues)}")
    return model


def load_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The user metadata stored by :func:`save`."""
    return read_header(path)["metadata"]
