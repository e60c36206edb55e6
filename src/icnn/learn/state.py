"""Training state on disk.

Model weights (safetensors) plus optimiser, scheduler, RNG and epoch in a ``torch.save`` file read back with
``weights_only=True`` — loading never executes code.

Layout of a checkpoint directory::

    model-0003.safetensors   weights (``icnn.save`` for icnn models, plain safetensors else)
    state-0003.pt            optimiser, scheduler, RNG states (one per process), epoch, history,
                             early stopping
    latest.json              {"epoch": 3, "model": ..., "state": ...}, renamed into place last

Every file is written to a temporary name and renamed, and ``latest.json`` is replaced only once
both files exist, so a crash at any point leaves the previous checkpoint readable. ``latest.json``
names plain files of its own folder; a pointer that leads anywhere else (an absolute path, a
``..``, a sub-folder, a link out of the folder) is refused when loading.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..checkpoint import (
    MODEL_CLASSES,
    CheckpointError,
    atomic_write,
    compare_shapes,
    read_safetensors_header,
    read_tensors,
    write_tensors,
)
from ..checkpoint import load as load_model
from ..checkpoint import save as save_model

LATEST = "latest.json"


def rng_state() -> dict[str, Any]:
    """Torch (CPU and CUDA), numpy and Python RNG states as tensors and plain values."""
    # the legacy global numpy RNG is what user code draws from, so it is what we must save
    kind, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002
    version, internal, gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": {"version": version, "internal": torch.tensor(internal, dtype=torch.int64),
                   "gauss": gauss},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    npy = state["numpy"]
    legacy = (npy["kind"], npy["keys"].numpy().astype(np.uint32), npy["pos"], npy["has_gauss"],
              npy["cached"])
    np.random.set_state(legacy)  # noqa: NPY002
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["internal"].tolist()), py["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_weights(model: nn.Module, path: Path, metadata: dict[str, Any] | None = None) -> Path:
    """``icnn.save`` for the library's models; plain safetensors of the state dict otherwise."""
    if type(model).__name__ in MODEL_CLASSES and hasattr(model, "config"):
        return save_model(model, path, metadata=metadata)
    return write_tensors(path, model.state_dict(), {"metadata": json.dumps(metadata or {})})


def load_weights_into(model: nn.Module, path: Path) -> None:
    """Load weights written by :func:`save_weights` into ``model`` in place.

    The file is checked as :func:`icnn.load` does (header, names and shapes against ``model``
    before any tensor is read, finite values); a mismatch is a :class:`CheckpointError`.
    """
    if type(model).__name__ in MODEL_CLASSES and hasattr(model, "config"):
        state = load_model(path, map_location="cpu").state_dict()
    else:
        stored, _ = read_safetensors_header(path)
        expected = {key: tuple(value.shape) for key, value in model.state_dict().items()}
        compare_shapes(path, expected, {key: shape for key, (_, shape) in stored.items()},
                       source=f"the {type(model).__name__} being loaded")
        state = read_tensors(path, "cpu")
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, ValueError) as error:
        raise CheckpointError(f"{path}: weights do not fit the {type(model).__name__}: "
                              f"{error}") from error


def save_checkpoint(directory: Path, epoch: int, model: nn.Module, state: dict[str, Any],
                    keep: int = 1) -> Path:
    """Write weights and trainer state for ``epoch``, then point ``latest.json`` at them."""
    directory.mkdir(parents=True, exist_ok=True)
    model_path = directory / f"model-{epoch:04d}.safetensors"
    state_path = directory / f"state-{epoch:04d}.pt"
    save_weights(model, model_path, metadata={"epoch": epoch})
    atomic_write(state_path, lambda tmp: torch.save(state, tmp))
    pointer = {"epoch": epoch, "model": model_path.name, "state": state_path.name}
    atomic_write(directory / LATEST, lambda tmp: Path(tmp).write_text(json.dumps(pointer)))
    for old in sorted(directory.glob("model-*.safetensors"))[:-keep]:
        old.unlink(missing_ok=True)
    for old in sorted(directory.glob("state-*.pt"))[:-keep]:
        old.unlink(missing_ok=True)
    return model_path


def load_checkpoint(directory: Path, model: nn.Module) -> dict[str, Any] | None:
    """Load the latest checkpoint of ``directory`` into ``model``.

    Return the trainer state (or None when there is no checkpoint). Uses ``torch.load(weights_only=True)``.

    Raises:
        ValueError: ``latest.json`` is malformed, names a file outside ``directory``, or its
            epoch disagrees with the state file's.
        FileNotFoundError: a file it names is missing.
    """
    pointer_path = directory / LATEST
    if not pointer_path.is_file():
        return None
    pointer = read_pointer(pointer_path)
    model_path = _file_inside(directory, pointer["model"], pointer_path)
    state_path = _file_inside(directory, pointer["state"], pointer_path)
    state = torch.load(state_path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("epoch") != pointer["epoch"]:
        found = state.get("epoch") if isinstance(state, dict) else type(state).__name__
        raise ValueError(f"{pointer_path} points at epoch {pointer['epoch']}, but {state_path} "
                         f"holds epoch {found!r}; expected the two to agree")
    load_weights_into(model, model_path)
    return state


def read_pointer(pointer_path: Path) -> dict[str, Any]:
    """``{"epoch": int, "model": str, "state": str}`` from ``latest.json``, checked."""
    try:
        pointer = json.loads(pointer_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{pointer_path} is not valid JSON ({error})") from None
    valid = (isinstance(pointer, dict) and isinstance(pointer.get("model"), str)
             and isinstance(pointer.get("state"), str) and isinstance(pointer.get("epoch"), int)
             and not isinstance(pointer.get("epoch"), bool))
    if not valid:
        raise ValueError(f"{pointer_path}: expected {{\"epoch\": int, \"model\": file name, "
                         f"\"state\": file name}}, got {pointer!r}")
    return pointer


def _file_inside(directory: Path, name: str, pointer_path: Path) -> Path:
    """``directory / name`` for a plain file name inside ``directory``.

    ``directory / name`` when ``name`` is a plain file name that stays inside ``directory``
    after resolving links.
    """
    root = directory.resolve()
    candidate = directory / name
    if Path(name).name != name or name in ("", ".", "..") or candidate.resolve().parent != root:
        raise ValueError(f"{pointer_path} names {name!r}; expected a file name inside {root} "
                         "(no absolute path, folder, '..' or link leading out of it)")
    if not candidate.is_file():
        raise FileNotFoundError(f"{pointer_path} names {name!r}, which is missing from {root}")
    return candidate
