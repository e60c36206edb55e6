"""What a run folder was trained on: the settings and data a ``--resume`` must match.

A resumed run that silently continued another problem, solver, data set or architecture would mix
two runs in one ``curve.csv`` and one set of weights. :func:`fit_transport` writes the identity
(every :class:`OTConfig` field but the ones a resume may change, the data's shapes, dtype and a
SHA-256 digest of its values, and a description of where the data came from) to
``identity.json`` beside the trainer's checkpoints and refuses to resume on a mismatch.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from torch import Tensor

from ..checkpoint import atomic_write

FILE = "identity.json"
# a resume may extend the epochs (the trainer refuses it for the cosine schedule) or show a bar
MAY_CHANGE = ("epochs", "progress")

__all__ = ["FILE", "check_identity", "run_identity", "write_identity"]


def _digest(tensors: list[Tensor | None]) -> str:
    digest = hashlib.sha256()
    for tensor in tensors:
        if tensor is None:
            digest.update(b"none")
            continue
        array = tensor.detach().cpu().contiguous().numpy()
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def run_identity(settings: dict[str, Any], source: Tensor, target: Tensor, source_context: Tensor | None,
                 target_context: Tensor | None, description: dict[str, Any] | None = None) -> dict[str, Any]:
    """The identity of a run as plain JSON values.

    Args:
        settings: the run's settings (``describe(config)``); the keys of ``MAY_CHANGE`` are left out.
        source: ``(N, D)`` training samples of P.
        target: ``(M, D)`` training samples of Q.
        source_context: ``(N, C)`` contexts of the source or None.
        target_context: ``(M, C)`` contexts of the target or None.
        description: where the data came from (benchmark, sample count, file names), or None.

    Returns:
        ``{"settings": ..., "data": {"shapes", "dtype", "sha256", ...description}}``.
    """
    shapes = [None if t is None else list(t.shape) for t in (source, target, source_context, target_context)]
    data = {**(description or {}), "shapes": shapes, "dtype": str(source.dtype).removeprefix("torch."),
            "sha256": _digest([source, target, source_context, target_context])}
    return {"settings": {k: v for k, v in settings.items() if k not in MAY_CHANGE}, "data": data}


def _flat(identity: dict[str, Any]) -> dict[str, Any]:
    return {f"{group}.{key}": value for group, values in identity.items() for key, value in values.items()}


def check_identity(folder: str | os.PathLike, identity: dict[str, Any]) -> None:
    """Refuse to resume the run in ``folder`` with another identity.

    Raises:
        ValueError: ``folder`` holds no identity (a folder of another tool or an older version) or
            one that differs; the message names every differing entry, "expected ..., got ...".
    """
    path = Path(folder) / FILE
    try:
        stored = json.loads(path.read_text())
        saved = _flat(stored)
    except FileNotFoundError:
        raise ValueError(f"expected {path} (the identity of the run to resume), got no such file: "
                         "start a new --out folder") from None
    except (json.JSONDecodeError, AttributeError, TypeError) as error:
        raise ValueError(f"expected a JSON run identity in {path}, got an unreadable file "
                         f"({error})") from None
    wanted = _flat(identity)
    differ = sorted(k for k in set(saved) | set(wanted) if saved.get(k) != wanted.get(k))
    if differ:
        raise ValueError("expected --resume with the settings and data of the run in "
                         f"{Path(folder).parent}: " + ", ".join(f"{k}={saved.get(k)!r}" for k in differ)
                         + "; got " + ", ".join(f"{k}={wanted.get(k)!r}" for k in differ)
                         + " (start a new --out folder to change them)")


def write_identity(folder: str | os.PathLike, identity: dict[str, Any]) -> None:
    """Write ``identity`` to ``folder/identity.json`` atomically (creates ``folder``)."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    text = json.dumps(identity, indent=1)
    atomic_write(Path(folder) / FILE, lambda tmp: Path(tmp).write_text(text))
