"""The two multi-label models of Section 6.2: the feed-forward baseline and the PICNN energy.

Feed-forward (the paper's baseline, ``multi-label-cls/ff.py``)::

    x -> fc(hidden) -> ReLU -> BatchNorm -> [dropout] -> fc(L) -> sigmoid

PICNN energy ``f(x, y)``, convex in ``y in [0, 1]^L`` (equation 3), built by
:func:`build_picnn`. With one y-path hidden layer its output layer already contains the term
``y^T (w o (A u_1 + b))``, a feed-forward net of ``x`` read as a linear energy in ``y``; with
bundle-entropy inference (``argmin_y f - H``) that term alone is exactly a sigmoid output layer
(Proposition 2 and Section 4.4), so the PICNN contains the baseline and adds label interactions
through the convex y-path.
"""

from __future__ import annotations

import json
import os
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

MODELS = ("ff", "picnn")


class FeedForward(nn.Module):
    """``fc(hidden) + ReLU + BatchNorm -> fc(n_labels)``: label logits of the baseline.

    Args:
        x_dim: number of features ``D``.
        n_labels: number of labels ``L``.
        hidden: width of the hidden layer (the paper: 600).
        dropout: dropout before the output layer (0 in the paper).

    Shape:
        Input ``x: (batch, x_dim)`` -> Output ``(batch, n_labels)`` logits; the label
        probabilities are ``torch.sigmoid`` of them.
    """

    def __init__(self, x_dim: int, n_labels: int, hidden: int = 600, dropout: float = 0.0) -> None:
        super().__init__()
        for name, value in (("x_dim", x_dim), ("n_labels", n_labels), ("hidden", hidden)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"expected {name} to be a positive int, got {value!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"expected dropout in [0, 1), got {dropout}")
        self.config = {"x_dim": x_dim, "n_labels": n_labels, "hidden": hidden, "dropout": dropout}
        self.net = nn.Sequential(
            nn.Linear(x_dim, hidden), nn.ReLU(), nn.BatchNorm1d(hidden), nn.Dropout(dropout),
            nn.Linear(hidden, n_labels),
        )

    def forward(self, x: Tensor) -> Tensor:
        """Label logits ``(batch, L)`` of features ``x: (batch, D)``."""
        return self.net(x)


def build_picnn(x_dim: int, n_labels: int, hidden: Sequence[int] = (200,),
                x_hidden: Sequence[int] | None = (600,), strong_convexity: float = 0.0):
    """The PICNN energy ``f(x, y)`` over ``y in [0, 1]^n_labels`` used by ``icnn multilabel``.

    Args:
        x_dim: size of the features.
        n_labels: size of the label vector.
        hidden: y-path hidden widths (the output layer of width 1 is appended).
        x_hidden: x-path widths, one per y-path hidden layer (default: 600, the paper's width).
        strong_convexity: ``mu`` of the added ``mu/2 ||y||^2`` (keeps the argmin unique).

    Returns:
        :class:`icnn.PICNN` with ReLU on both paths and softplus-parametrised ``W^(z) >= 0``.
    """
    from icnn import PICNN

    hidden = tuple(hidden)
    x_hidden = hidden if x_hidden is None else tuple(x_hidden)
    return PICNN(x_dim, n_labels, hidden=hidden, x_hidden=x_hidden,
                 strong_convexity=strong_convexity)


def count_parameters(model: nn.Module) -> int:
    """Number of scalar parameters of ``model``."""
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def feedforward_scores(model: FeedForward, x: Tensor, batch_size: int = 1024) -> Tensor:
    """Label probabilities ``sigmoid(model(x))`` in eval mode, ``(N, L)``."""
    model.eval()
    return torch.cat([torch.sigmoid(model(chunk)) for chunk in x.split(batch_size)])


FEEDFORWARD_CLASS = "FeedForward"


def save_feedforward(model: FeedForward, path: str | os.PathLike,
                     metadata: dict[str, Any] | None = None) -> Path:
    """Write the baseline with its config and ``metadata`` (:func:`icnn.checkpoint.write_tensors`)."""
    from icnn.checkpoint import write_tensors

    if not isinstance(model, FeedForward):
        raise TypeError(f"expected a FeedForward, got {type(model).__name__}")
    header = {"model_class": FEEDFORWARD_CLASS, "config": json.dumps(model.config),
              "metadata": json.dumps(metadata or {})}
    return write_tensors(path, model.state_dict(), header)


def feedforward_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The ``metadata`` stored by :func:`save_feedforward` (header checked, no tensor read)."""
    from icnn.checkpoint import decode_json_object

    return decode_json_object(path, "metadata", _feedforward_header(path).get("metadata", "{}"))


def _feedforward_header(path: str | os.PathLike) -> dict[str, str]:
    from icnn.checkpoint import CheckpointError, read_safetensors_header

    _, header = read_safetensors_header(path)
    if header.get("model_class") != FEEDFORWARD_CLASS or "config" not in header:
        raise CheckpointError(f"{path}: expected a FeedForward baseline (model_class "
                              f"'FeedForward' and a config), got model_class "
                              f"{header.get('model_class')!r}")
    return header


def load_feedforward(path: str | os.PathLike) -> FeedForward:
    """Read back a baseline written by :func:`save_feedforward`, in eval mode.

    The checks of :func:`icnn.load`: header validated, config keys and types, shapes compared
    before building, finite tensors; any failure is a :class:`icnn.CheckpointError`.
    """
    from icnn.checkpoint import (
        CheckpointError,
        check_config_values,
        check_types,
        decode_json_object,
        read_checked_tensors,
        read_safetensors_header,
    )

    stored, _ = read_safetensors_header(path)
    config = decode_json_object(path, "config", _feedforward_header(path)["config"])
    check_config_values(path, config)
    allowed = {"x_dim", "n_labels", "hidden", "dropout"}
    if set(config) - allowed or {"x_dim", "n_labels"} - set(config):
        raise CheckpointError(f"{path}: expected a FeedForward config with keys {sorted(allowed)} "
                              f"(x_dim and n_labels required), got {sorted(config)}")
    check_types(path, "config", config, typing.get_type_hints(FeedForward.__init__))
    tensors = read_checked_tensors(path, stored, lambda: FeedForward(**config), "a FeedForward")
    model = FeedForward(**config)
    try:
        model.load_state_dict(tensors, strict=True)
    except (RuntimeError, ValueError) as error:
        raise CheckpointError(f"{path}: weights do not fit the FeedForward: {error}") from error
    return model.eval()
