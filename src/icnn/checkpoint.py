"""Checkpoints: safetensors weights plus the constructor config, written atomically.

Loading never executes code: the file holds tensors and a JSON header; the model class is looked
up by name in a fixed registry of the library's own models. Every refusal is a
:class:`CheckpointError` (a ValueError) saying what was expected and what the file holds:

1. the safetensors header is read and checked alone (a JSON object, known dtypes, every shape
   matching its byte range, every byte range inside the file) — no tensor is read yet;
2. the icnn header is checked: format, class name, dtype, and a config with only the
   constructor's own keys (never ``device``/``dtype``), JSON values within :data:`MAX_LIST` and
   :data:`MAX_INT`;
3. the shapes that config implies (:func:`expected_shapes`: the constructor run on the meta
   device, no storage allocated) are compared with the stored shapes — so a tiny file cannot
   ask for large weights: a model is built only when its tensors are all in the file;
4. the tensors are read and must be finite; the model is built, its weights loaded, and
   negative constrained weights or a non-convex structure are refused.
"""

from __future__ import annotations

import collections.abc
import inspect
import json
import math
import os
import tempfile
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
import torch.utils._device as _torch_device
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn
from torch.overrides import TorchFunctionMode

from . import nn as icnn_nn
from .nn.base import ConvexModel
from .nn.check import structural_issues

FORMAT_VERSION = "1"
MODEL_CLASSES = ("FICNN", "PICNN", "ConvFICNN", "ConvPICNN")
FLOAT_DTYPES = ("float32", "float64", "float16", "bfloat16")
# caps on what a header may ask for: beyond them a file is refused before anything is built
MAX_HEADER_BYTES = 16 * 2**20
MAX_TENSORS = 10_000
MAX_LIST = 1_000  # entries of one config list (layers, channels)
MAX_INT = 2**31  # any integer in a config (a width, a shape)
# safetensors dtype codes -> (bytes per element, torch name)
SAFETENSORS_DTYPES = {
    "F64": (8, "float64"), "F32": (4, "float32"), "F16": (2, "float16"), "BF16": (2, "bfloat16"),
    "I64": (8, "int64"), "I32": (4, "int32"), "I16": (2, "int16"), "I8": (1, "int8"),
    "U8": (1, "uint8"), "BOOL": (1, "bool"),
}
_FACTORY_KEYS = ("device", "dtype")  # chosen by the loader, never by the file


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded safely."""


def _model_class(name: Any) -> type[nn.Module]:
    cls = getattr(icnn_nn, name, None) if isinstance(name, str) and name in MODEL_CLASSES else None
    if cls is None:
        raise CheckpointError(f"checkpoint names model class {name!r}; expected one of "
                              f"{[n for n in MODEL_CLASSES if hasattr(icnn_nn, n)]}")
    return cls


# --- writing ---------------------------------------------------------------------------------


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


def write_tensors(path: str | os.PathLike, tensors: Mapping[str, torch.Tensor],
                  header: Mapping[str, str]) -> Path:
    """Write ``tensors`` and the string ``header`` to a safetensors file, atomically.

    The one safetensors writer of the library (models, agents, baselines, trainer weights).

    Args:
        path: destination; written to a temporary file first, then renamed.
        tensors: name -> tensor (detached, moved to the CPU and made contiguous here).
        header: the ``__metadata__`` of the file; every key and value a ``str``.
    """
    bad = {k: type(v).__name__ for k, v in header.items()
           if not isinstance(k, str) or not isinstance(v, str)}
    if bad:
        raise TypeError(f"expected a header of str -> str, got non-str values for {bad}")
    cpu = {name: tensor.detach().to("cpu").contiguous() for name, tensor in tensors.items()}
    return atomic_write(path, lambda tmp: save_file(cpu, tmp, metadata=dict(header)))


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
    header = {
        "icnn_format": FORMAT_VERSION,
        "model_class": name,
        "config": json.dumps(config),
        "dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
        "metadata": json.dumps(metadata or {}),
    }
    return write_tensors(path, model.state_dict(), header)


# --- reading the header ----------------------------------------------------------------------


def read_safetensors_header(path: str | os.PathLike
                            ) -> tuple[dict[str, tuple[str, tuple[int, ...]]], dict[str, str]]:
    """The stored tensors and the ``__metadata__`` of a safetensors file, checked, no data read.

    Returns:
        ``({name: (torch dtype name, shape)}, metadata)``; every shape matches its byte range
        and every byte range lies inside the file.

    Raises:
        FileNotFoundError / IsADirectoryError: no file at ``path``.
        CheckpointError: anything else that is not a well-formed safetensors file.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"expected a checkpoint file, got the directory {path}")
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    file_size = path.stat().st_size
    with open(path, "rb") as handle:
        prefix = handle.read(8)
        size = int.from_bytes(prefix, "little")
        if len(prefix) < 8 or size <= 0 or size > min(file_size - 8, MAX_HEADER_BYTES):
            raise CheckpointError(
                f"{path} is not a valid safetensors file (truncated or corrupt header: expected "
                f"a header of 1 to {min(max(file_size - 8, 0), MAX_HEADER_BYTES)} bytes, "
                f"{size if len(prefix) == 8 else 'no size'} announced)")
        try:
            raw = json.loads(handle.read(size))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise CheckpointError(f"{path} has a corrupt header: {error}") from error
    _expect(isinstance(raw, dict), path, "header", "a JSON object", raw)
    meta = raw.pop("__metadata__", None) or {}
    _expect(isinstance(meta, dict) and all(isinstance(v, str) for v in meta.values()), path,
            "__metadata__", "a JSON object of strings", meta)
    if len(raw) > MAX_TENSORS:
        raise CheckpointError(f"{path}: expected at most {MAX_TENSORS} tensors, got {len(raw)}")
    data_size = file_size - 8 - size
    tensors = {}
    for name, entry in raw.items():
        tensors[name] = _tensor_entry(path, name, entry, data_size)
    return tensors, meta


def _expect(ok: bool, path: Path, what: str, expected: str, got: Any) -> None:
    if not ok:
        shown = repr(got) if len(repr(got)) <= 80 else repr(got)[:77] + "..."
        raise CheckpointError(f"{path}: expected {what} to be {expected}, got "
                              f"{type(got).__name__} {shown}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _tensor_entry(path: Path, name: str, entry: Any, data_size: int
                  ) -> tuple[str, tuple[int, ...]]:
    _expect(isinstance(entry, dict), path, f"tensor {name!r}", "an object", entry)
    code, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    _expect(code in SAFETENSORS_DTYPES, path, f"the dtype of tensor {name!r}",
            f"one of {sorted(SAFETENSORS_DTYPES)}", code)
    _expect(isinstance(shape, list) and all(_is_int(s) and 0 <= s <= MAX_INT for s in shape),
            path, f"the shape of tensor {name!r}", f"a list of ints in [0, {MAX_INT}]", shape)
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(map(_is_int, offsets))
            and 0 <= offsets[0] <= offsets[1] <= data_size):
        raise CheckpointError(f"{path} is truncated or corrupt: expected the data_offsets of "
                              f"tensor {name!r} to be [begin, end] with 0 <= begin <= end <= "
                              f"{data_size} (the data bytes in the file), got {offsets!r}")
    itemsize, dtype = SAFETENSORS_DTYPES[code]
    expected_bytes = math.prod(shape) * itemsize
    if offsets[1] - offsets[0] != expected_bytes:
        raise CheckpointError(f"{path}: tensor {name!r} of shape {tuple(shape)} and dtype {dtype} "
                              f"expected {expected_bytes} bytes, got {offsets[1] - offsets[0]}")
    return dtype, tuple(shape)


def read_header(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON header of a checkpoint: ``model_class``, ``config``, ``dtype``, ``metadata``.

    Also ``tensors``: ``{name: (dtype, shape)}`` of the stored tensors (no data read).
    """
    path = Path(path)
    tensors, meta = read_safetensors_header(path)
    if meta.get("icnn_format") != FORMAT_VERSION:
        raise CheckpointError(f"{path} is not an icnn checkpoint (format "
                              f"{meta.get('icnn_format')!r}, expected {FORMAT_VERSION!r})")
    if "model_class" not in meta or "config" not in meta:
        raise CheckpointError(f"{path} has an incomplete icnn header: expected model_class and "
                              f"config, got {sorted(meta)}")
    dtype = meta.get("dtype", "float32")
    _expect(dtype in FLOAT_DTYPES, path, "the header dtype", f"one of {list(FLOAT_DTYPES)}",
            dtype)
    return {
        "model_class": meta["model_class"],
        "config": decode_json_object(path, "config", meta["config"]),
        "dtype": dtype,
        "metadata": decode_json_object(path, "metadata", meta.get("metadata", "{}")),
        "tensors": tensors,
    }


def decode_json_object(path: str | os.PathLike, what: str, text: str) -> dict[str, Any]:
    """``json.loads(text)``, which must be an object; a CheckpointError names ``what`` else."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{path}: {what} is not valid JSON: {error}") from error
    _expect(isinstance(value, dict), Path(path), what, "a JSON object", value)
    return value


def check_config_values(path: str | os.PathLike, config: Mapping[str, Any]) -> None:
    """Refuse ``device``/``dtype`` keys and values beyond the caps.

    Refuse ``device``/``dtype`` keys and values beyond the caps (:data:`MAX_LIST`,
    :data:`MAX_INT`), recursively; only JSON scalars, lists and objects are expected.
    """
    for key in _FACTORY_KEYS:
        if key in config:
            raise CheckpointError(f"{path}: config key {key!r} is not allowed (the loader chooses "
                                  f"the {key}); got {key}={config[key]!r}")

    def visit(where: str, value: Any) -> None:
        if isinstance(value, bool) or value is None or isinstance(value, str | float):
            return
        if isinstance(value, int):
            if abs(value) > MAX_INT:
                raise CheckpointError(f"{path}: expected config {where} to be at most {MAX_INT} "
                                      f"in size, got {value}")
            return
        if isinstance(value, list | tuple):
            if len(value) > MAX_LIST:
                raise CheckpointError(f"{path}: expected config {where} to have at most "
                                      f"{MAX_LIST} entries, got {len(value)}")
            for i, item in enumerate(value):
                visit(f"{where}[{i}]", item)
            return
        if isinstance(value, dict):
            for k, item in value.items():
                visit(f"{where}.{k}", item)
            return
        raise CheckpointError(f"{path}: expected config {where} to be a JSON value, got "
                              f"{type(value).__name__}")

    for key, value in config.items():
        visit(key, value)


def check_types(path: str | os.PathLike, what: str, values: Mapping[str, Any],
                hints: Mapping[str, Any]) -> None:
    """Refuse a JSON value whose type differs from its annotation in ``hints``.

    Understood: ``int`` (not bool), ``float`` (int or float), ``bool``, ``str``,
    ``Sequence[T]``/``tuple[T, ...]`` (a JSON list), ``T | None``; anything else is not checked.
    """
    for key, value in values.items():
        if key in hints and not _matches(value, hints[key]):
            raise CheckpointError(f"{path}: expected {what} {key} to be "
                                  f"{_describe(hints[key])}, got {type(value).__name__} {value!r}")


def _matches(value: Any, annotation: Any) -> bool:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is int:
        return _is_int(value)
    if annotation is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if annotation in (bool, str):
        return isinstance(value, annotation)
    if annotation is type(None):
        return value is None
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in args)
    if origin in (tuple, list, collections.abc.Sequence) and args:
        return isinstance(value, list | tuple) and all(_matches(v, args[0]) for v in value)
    return True


def _describe(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) if isinstance(annotation, type) else str(
        annotation).replace("collections.abc.", "").replace("typing.", "")


def _check_config_keys(path: Path, cls: type, config: Mapping[str, Any]) -> None:
    check_types(path, "config", config, typing.get_type_hints(cls.__init__))
    parameters = inspect.signature(cls).parameters
    allowed = [name for name, p in parameters.items() if name not in _FACTORY_KEYS
               and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown = sorted(set(config) - set(allowed))
    if unknown:
        raise CheckpointError(f"{path}: unknown config key(s) {unknown} for {cls.__name__}; "
                              f"expected some of {allowed}")
    missing = [name for name in allowed
               if parameters[name].default is inspect.Parameter.empty and name not in config]
    if missing:
        raise CheckpointError(f"{path}: config for {cls.__name__} lacks {missing}")


# --- shapes before building -------------------------------------------------------------------


class _StorageFree(TorchFunctionMode):
    """Run a constructor with every new tensor on the meta device (shapes, no storage).

    Data-dependent reads (``bool``, ``item``, ``float``) of a meta tensor answer a neutral
    value: they only steer initialisation, never a shape.
    """

    _NEUTRAL: dict[Any, Any] = {torch.Tensor.__bool__: False, torch.Tensor.item: 0.0,
                                torch.Tensor.__float__: 0.0, torch.Tensor.__int__: 0,
                                torch.Tensor.tolist: []}

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = dict(kwargs or {})
        if func in self._NEUTRAL:
            return self._NEUTRAL[func]
        if func in _torch_device._device_constructors():
            kwargs["device"] = "meta"
        return func(*args, **kwargs)


def expected_shapes(build: Callable[[], Any]) -> dict[str, tuple[int, ...]]:
    """The state shapes of what ``build()`` constructs, computed without allocating storage.

    ``build`` returns an ``nn.Module`` or a mapping ``{prefix: nn.Module}`` (keys then read
    ``"<prefix>.<state key>"``). It runs on the meta device, so widths of any size cost nothing;
    callers cap the number of layers (:func:`check_config_values`) before calling it.
    """
    with _StorageFree():
        built = build()
    modules = built.items() if isinstance(built, Mapping) else [("", built)]
    return {f"{prefix}.{key}" if prefix else key: tuple(value.shape)
            for prefix, module in modules for key, value in module.state_dict().items()}


def compare_shapes(path: str | os.PathLike, expected: Mapping[str, tuple[int, ...]],
                   stored: Mapping[str, tuple[int, ...]], source: str = "the config") -> None:
    """Refuse stored tensors whose names or shapes differ from ``expected``."""
    missing, extra = sorted(set(expected) - set(stored)), sorted(set(stored) - set(expected))
    if missing or extra:
        raise CheckpointError(f"{path}: the stored tensors do not match {source}: missing "
                              f"{missing[:5]}{'...' if len(missing) > 5 else ''}, unexpected "
                              f"{extra[:5]}{'...' if len(extra) > 5 else ''}")
    for name, shape in expected.items():
        if tuple(stored[name]) != tuple(shape):
            raise CheckpointError(f"{path}: tensor {name!r}: expected shape {tuple(shape)} "
                                  f"(from {source}), got {tuple(stored[name])} in the file")


def read_checked_tensors(path: str | os.PathLike, stored: Mapping[str, tuple[str, Any]],
                         build: Callable[[], Any], what: str,
                         device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """The file's tensors, read after their shapes are checked.

    The file's tensors, read only once the shapes ``build()`` implies (computed without
    storage, :func:`expected_shapes`) equal the ``stored`` ones (``name -> (dtype, shape)``
    from :func:`read_safetensors_header`).

    Raises:
        CheckpointError: the header does not build ``what``, names or shapes differ, or the
            tensors are corrupt or not finite.
    """
    try:
        expected = expected_shapes(build)
    except (TypeError, ValueError, RuntimeError) as error:
        raise CheckpointError(f"{path}: the header does not build {what}: {error}") from error
    compare_shapes(path, expected, {name: shape for name, (_, shape) in stored.items()})
    return read_tensors(path, device)


def read_tensors(path: str | os.PathLike, device: str | torch.device = "cpu"
                 ) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file whose header was checked; all floats must be finite."""
    try:
        tensors = load_file(str(path), device=str(device))
    except (SafetensorError, OSError, RuntimeError) as error:
        raise CheckpointError(f"{path} is truncated or corrupt: {error}") from error
    for key, value in tensors.items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise CheckpointError(f"{path}: tensor {key!r} has NaN/inf entries")
    return tensors


def check_device(map_location: Any) -> torch.device:
    """``map_location`` as a real device; a ValueError names what was expected else."""
    try:
        device = torch.device(map_location)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"expected map_location to be a device such as 'cpu' or 'cuda:0', got "
                         f"{map_location!r}") from error
    if device.type == "meta":
        raise ValueError("expected map_location to be a device with storage ('cpu', 'cuda'), "
                         "got 'meta'")
    return device


# --- loading ---------------------------------------------------------------------------------


def load(path: str | os.PathLike, map_location: str | torch.device = "cpu", *,
         allow_nonconvex: bool = False) -> nn.Module:
    """Rebuild the model saved at ``path``; refuse corrupt, hostile or non-convex checkpoints.

    Args:
        path: a file written by :func:`save`.
        map_location: device to load onto.
        allow_nonconvex: accept the explicit non-convex ablation (``ConvPICNN(convex=False)``);
            negative constrained weights are refused regardless.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: ``map_location`` is not a device with storage.
        CheckpointError: truncated/corrupt file or header, unknown class, a config with unknown
            keys, wrong types or sizes beyond the caps, stored tensors whose names, shapes or
            dtype differ from what the config implies, non-finite values, or negative
            constrained weights.
    """
    device = check_device(map_location)
    header = read_header(path)
    cls = _model_class(header["model_class"])
    config = header["config"]
    check_config_values(path, config)
    _check_config_keys(Path(path), cls, config)
    dtype = getattr(torch, header["dtype"])
    stored = header["tensors"]
    wrong_dtype = {name: d for name, (d, _) in stored.items() if d != header["dtype"]}
    if wrong_dtype:
        name, found = next(iter(wrong_dtype.items()))
        raise CheckpointError(f"{path}: expected every tensor in {header['dtype']} (the header "
                              f"dtype), got {found} for {name!r}")
    tensors = read_checked_tensors(path, stored, lambda: cls(**config), f"a {cls.__name__}",
                                   device)
    try:
        model = cls(**config).to(device=device, dtype=dtype)
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: config does not build a {cls.__name__}: {error}") from error
    try:
        model.load_state_dict(tensors, strict=True)
    except (RuntimeError, ValueError) as error:
        raise CheckpointError(f"{path}: weights do not fit the model: {error}") from error
    # the ablation's own declaration is the one issue allow_nonconvex lets through: the base
    # class's checks (constrained weights, activations) still apply to it
    issues = ConvexModel.structural_issues(model) if allow_nonconvex else structural_issues(model)
    if issues:
        raise CheckpointError(f"{path}: refusing a non-convex checkpoint: {'; '.join(issues)}")
    return model


def load_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The user metadata stored by :func:`save`."""
    return read_header(path)["metadata"]
