"""A trained :class:`TransportModel` on disk.

One safetensors file whose header holds the architecture and the settings its maps need (written with
:func:`icnn.checkpoint.write_tensors`, read back with the library's checked readers).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..checkpoint import CheckpointError, compare_shapes, read_safetensors_header, read_tensors, write_tensors
from .fit import OTConfig
from .transport_model import PotentialConfig, TransportModel

KEY = "icnn_ot"

__all__ = ["load_transport", "save_transport"]


def save_transport(model: TransportModel, config: OTConfig, path: str | os.PathLike,
                   info: dict[str, Any] | None = None) -> Path:
    """Write a transport model, its configs and ``info`` to one safetensors file.

    Write the weights of ``model`` with its :class:`PotentialConfig`, the run's
    :class:`OTConfig` and ``info`` (JSON values) to ``path`` atomically.
    """
    header = {"potential": model.config.to_dict(), "ot": {**config.__dict__, "hidden": list(config.hidden)},
              "dtype": str(next(model.parameters()).dtype).removeprefix("torch."), "info": info or {}}
    return write_tensors(path, model.state_dict(), {KEY: json.dumps(header)})


def load_transport(path: str | os.PathLike) -> tuple[TransportModel, OTConfig, dict[str, Any]]:
    """The model, its :class:`OTConfig` and the saved ``info`` from a :func:`save_transport` file.

    Raises:
        FileNotFoundError: no file; CheckpointError (a ValueError): not an ``icnn ot`` checkpoint,
            a corrupt header, or weights that do not fit the stored architecture.
    """
    wanted = f"expected an 'icnn ot' checkpoint (transport.safetensors of a run) at {path}"
    try:
        stored, meta = read_safetensors_header(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{wanted}, got no such file") from None
    except CheckpointError as error:
        raise CheckpointError(f"{wanted}, got an unreadable file ({error})") from None
    if KEY not in meta:
        raise CheckpointError(f"{wanted}, got a safetensors file without the header key {KEY!r} "
                              f"(header keys {sorted(meta)})")
    try:
        header = json.loads(meta[KEY])
        potential = PotentialConfig(**{**header["potential"], "hidden": tuple(header["potential"]["hidden"])})
        config = OTConfig(**{**header["ot"], "hidden": tuple(header["ot"]["hidden"])})
        dtype = header["dtype"]
        if dtype not in ("float32", "float64"):
            raise ValueError(f"dtype {dtype!r}, expected float32 or float64")
        model = TransportModel(potential)
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{wanted}, got a corrupt 'icnn ot' header ({type(error).__name__}: "
                              f"{error})") from None
    model = model.double() if dtype == "float64" else model.float()
    expected = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    try:
        compare_shapes(path, expected, {key: shape for key, (_, shape) in stored.items()},
                       source="the stored architecture")
        model.load_state_dict(read_tensors(path, "cpu"), strict=True)
    except (CheckpointError, RuntimeError) as error:
        raise CheckpointError(f"{wanted}, got weights that do not fit its stored architecture "
                              f"({error})") from None
    return model.eval(), config, header.get("info", {})
