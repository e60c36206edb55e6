"""One completion experiment: load images, train each variant, write metrics and the figure."""

from __future__ import annotations

import json
import math
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from ...checkpoint import atomic_write, save
from ...data.images import load_images
from ...data.paths import recorded_path
from .baselines import (
    BASELINES,
    CLOSED_FORMS,
    BaselineResult,
    RegressorConfig,
    best_baseline,
    conv_regressor_at,
    cross_fitted,
    fit_on,
    predict_anchor,
    regressor_curve,
    save_anchor,
)
from .blend import BLEND_WEIGHTS, blend, blend_errors, unravel
from .crossfit import choose_epochs, closed_form_errors, cross_fit_curves, fold_baselines
from .crossval import fit_baselines_cv
from .data import (
    CompletionData,
    CompletionSplit,
    concatenate,
    hold_out,
    make_completion_data,
    per_example_mse,
)
from .ensemble import CompletionEnsemble
from .figure import save_completions_figure
from .folds import clustered_mean, default_group_size, group_folds, held_out_size, n_groups
from .protocols import apply_protocol
from .train import (
    CompletionConfig,
    CompletionResult,
    paper_mse,
    predict,
    train_completion,
)
from .verdict import t_critical, validation_verdict

ANCHORS = CLOSED_FORMS
# the variants built on a closed-form baseline g (its choice: --anchor)
ANCHOR_VARIANTS = ("anchored", "averaged")
# The paper's Olivetti table (test MSE, 0-255 units; reference notes §4.3).
PAPER_MSE = {"bundle_entropy": 833.0, "gd": 872.0, "nonconvex": 850.9}


@dataclass
class CompletionRun:
    """Where the data come from and where the results go.

    Attributes:
        images: Olivetti ``.mat`` or ``.npy`` ``(N, H, W)`` in ``[0, 1]``.
        n_train: the first ``n_train`` images train, the rest test.
        out: output directory.
        mask: task spec (``"left-half"`` or a pixel mask, see ``data.parse_mask``).
        show: test faces drawn in ``completions.png`` (evenly spaced over the test set).
        seed: seeds the random masks.
        validation: hold out the last this many training images as a validation set
            (:func:`icnn.tasks.completion.data.hold_out`; 0: train on all ``n_train``, the
            paper's protocol; None, the default: the cross-fitted verdict over every training
            person when ``verdict_folds >= 2``, else ``round(validation_fraction * groups)``
            whole groups (people), :func:`icnn.tasks.completion.folds.held_out_size`).
        verdict_folds: with ``validation`` None, ``K >= 2`` folds of whole people for the
            cross-fitted verdict (:mod:`icnn.tasks.completion.crossfit`): every method and
            baseline is fit on ``K - 1`` folds and scored on the other, for every fold (the
            baselines' hyper-parameters and the anchor chosen on those ``K - 1`` folds only); the
            methods' epochs are chosen on these out-of-fold curves, the final models are
            trained on every training image, and the verdict has ``people - 1`` degrees of
            freedom. 0: the hold-out of ``validation_fraction`` (early stopping and the verdict
            on the held-out people, the behaviour before the cross-fit).
        validation_fraction: in ``(0, 1)``, used when ``validation`` is None and
            ``verdict_folds`` is 0; with ``validation = 0`` the CNN baseline still chooses its
            epoch on this fraction of the training images (held out from its fit only).
        group_size: consecutive images per person, for the folds and the hold-out (None: 10 for
            the Olivetti faces, 1 otherwise, :func:`icnn.tasks.completion.folds.default_group_size`).
        protocol: ``"paper"`` or ``"small-faces"`` (:mod:`icnn.tasks.completion.protocols`).
        baselines: baselines fit and scored besides the mean image (``"ridge"``,
            ``"kernel_ridge"``, ``"cnn"``).
        anchor_folds: folds (whole groups) of the cross-validation that chooses the closed-form
            baselines' hyper-parameters and the anchor, and of the out-of-fold anchor values the
            anchored energy trains on; capped at the number of groups (small faces: one fold
            per person).
        anchor: ``g`` of the anchored energy and of the averaged recipe: ``"best"`` (the
            closed-form baseline best by
            cross-validation), ``"mean_image"``, ``"ridge"``, ``"kernel_ridge"`` or ``"blend"``
            (the last three need their baselines in ``baselines``).
        regressor_epochs: epochs of the CNN baseline (the direct regressor).
        fallback_z: the one-sided level, in standard normal deviations, of the validation
            verdict: a trained predictor beats a baseline when its mean per-image validation
            gain exceeds the Student-t critical value at this level (``groups - 1`` degrees of
            freedom) in standard errors clustered by person; the anchored energy and the
            averaged recipe ship only when they beat every baseline
            (:mod:`icnn.tasks.completion.verdict`).
        ensemble: members per variant (seeds ``seed``, ``seed + 1``, ...); above 1 the variant's
            prediction is the argmin of their mean energy
            (:class:`icnn.tasks.completion.ensemble.CompletionEnsemble`).
    """

    images: Path
    n_train: int | None = None
    out: Path = Path("runs/completion")
    mask: str = "left-half"
    show: int = 12
    seed: int = 0
    validation: int | None = None
    ensemble: int = 1
    validation_fraction: float = 0.2
    group_size: int | None = None
    protocol: str = "paper"
    baselines: tuple[str, ...] = BASELINES
    anchor_folds: int = 10
    regressor_epochs: int = 30
    anchor: str = "best"
    fallback_z: float = 2.0
    verdict_folds: int = 5


def run_completion(spec: CompletionRun, configs: Sequence[CompletionConfig],
                   log: Callable[[str], Any] = lambda message: None) -> dict[str, Any]:
    """Train every config on the same data; write ``metrics.json`` and ``completions.png``.

    Returns:
        The summary written to ``metrics.json``: ``test_mse`` (method -> MSE), ``methods``
        (per method: test/train/validation MSE, wall seconds, seed, config, learning curve; with
        an ensemble, each member's record under ``members``; for ``anchored`` the anchor, the
        energy's own MSEs, the paired validation gain and ``fallback`` / ``shipped``; for
        ``averaged`` the same, the ``energy_*`` MSEs being the blend's, plus ``blend_weight``,
        ``icnn_test_mse`` / ``icnn_train_mse`` (the ICNN alone) and, in ``cross_fit``,
        ``blend_weights``, ``blend_weight``, ``fold_blend_weights`` and ``curve_per_weight``
        (pooled out-of-fold MSE per epoch and weight; ``curve`` is its minimum per epoch); every
        method with a validation split: ``validation_mse``, ``comparisons``,
        ``best_on_validation``, ``selected``, ``verdict``, :mod:`.verdict`),
        ``baselines`` (test MSE per baseline), ``baseline_details`` (validation / test / train
        MSE, chosen parameters and grid), ``baseline_selection`` (under the cross-fit with each
        verdict fold's hyper-parameters, ``verdict_fold_params``), with a hold-out
        ``verdict_baselines`` (the closed forms chosen on the training part only, which the
        verdict compares with and the anchor is chosen among), ``paper_mse`` and the data
        description.

    Raises:
        ValueError: no method; a bad ensemble size, validation size or fraction (outside
            ``(0, 1)``, or, for a hold-out, too few training images to hold it out), fallback z,
            group size, anchor folds, protocol or mask; an unknown baseline; the averaged
            method without the cross-fit or with an ensemble; ``--anchor`` not
            among the closed forms ``spec.baselines`` fits; an ensemble of anchored energies
            or an ensemble under the cross-fit; ``verdict_folds`` not 0 or ``>= 2``, more
            folds than training people, or fewer than 2 people outside a fold; a validation
            that splits a person, or fewer than 2 training people outside it.
        FileNotFoundError: ``spec.images`` missing.
    """
    if not configs:
        raise ValueError("expected at least one method to train")
    if isinstance(spec.ensemble, bool) or not isinstance(spec.ensemble, int) or spec.ensemble < 1:
        raise ValueError(f"expected an ensemble size >= 1, got {spec.ensemble!r}")
    fraction = spec.validation_fraction
    if isinstance(fraction, bool) or not isinstance(fraction, int | float) \
            or not 0 < fraction < 1:
        raise ValueError(f"expected a validation fraction in (0, 1), got {fraction!r}")
    unknown = [name for name in spec.baselines if name not in BASELINES]
    if unknown:
        raise ValueError(f"expected baselines among {BASELINES}, got {unknown}")
    if any(c.variant in ANCHOR_VARIANTS for c in configs):
        anchors = _available_anchors(spec.baselines)
        if spec.anchor != "best" and spec.anchor not in anchors:
            raise ValueError(f"expected --anchor best or a closed-form baseline fit in this run "
                             f"{list(anchors)} (see --baselines), got {spec.anchor!r}")
    if spec.validation is not None and (isinstance(spec.validation, bool)
                                        or not isinstance(spec.validation, int)
                                        or spec.validation < 0):
        raise ValueError(f"expected a validation size >= 0 or None, got {spec.validation!r}")
    if spec.validation == 0 and any(c.variant == "anchored" for c in configs):
        raise ValueError("expected a validation split for the anchored method (it chooses its "
                         "anchor and checks itself on it), got --validation 0")
    if isinstance(spec.fallback_z, bool) or not isinstance(spec.fallback_z, int | float) \
            or not math.isfinite(spec.fallback_z) or spec.fallback_z < 0:
        raise ValueError(f"expected a fallback z that is a finite number >= 0, got "
                         f"{spec.fallback_z!r}")
    if spec.ensemble > 1 and any(c.variant == "anchored" for c in configs):
        raise ValueError(f"expected --ensemble 1 with the anchored method, got {spec.ensemble}")
    folds = spec.verdict_folds
    if isinstance(folds, bool) or not isinstance(folds, int) or folds == 1 or folds < 0:
        raise ValueError(f"expected --verdict-folds 0 (a hold-out) or an int >= 2, got {folds!r}")
    cross = folds >= 2 and spec.validation is None
    if spec.ensemble > 1 and any(c.variant == "averaged" for c in configs):
        raise ValueError(f"expected --ensemble 1 with the averaged method (its weight and epoch "
                         f"are chosen by the cross-fit, which trains one member), got "
                         f"{spec.ensemble}")
    if not cross and any(c.variant == "averaged" for c in configs):
        raise ValueError(f"expected the cross-fit for the averaged method (its weight and epoch "
                         f"are chosen out of fold: no --validation, --verdict-folds >= 2), got "
                         f"--validation {spec.validation} and --verdict-folds {folds}")
    if cross and spec.ensemble > 1:
        raise ValueError(f"expected --ensemble 1 with the cross-fitted verdict (--verdict-folds "
                         f"{folds}; use --verdict-folds 0 or --validation N), got {spec.ensemble}")
    group_size = (default_group_size(spec.images, spec.protocol) if spec.group_size is None
                  else spec.group_size)
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 1:
        raise ValueError(f"expected a group size >= 1, got {group_size!r}")
    images = load_images(spec.images)
    images, n_train = apply_protocol(images, spec.protocol, spec.n_train)
    data = make_completion_data(images, n_train, spec.mask, seed=spec.seed)
    everything = data.train
    n_held = held_out_size(len(data.train), fraction, group_size)
    # the fraction is used by the hold-out and, without a validation split, by the CNN's epoch
    if not cross and (spec.validation is None or (spec.validation == 0 and "cnn" in spec.baselines)) \
            and (n_held < 1 or len(data.train) - n_held < 2):
        raise ValueError(f"expected enough training images for a validation fraction of "
                         f"{fraction} (at least one held out and two kept), got "
                         f"{len(data.train)} training images")
    if spec.validation and group_size > 1 and (len(data.train) - spec.validation) % group_size:
        raise ValueError(f"expected --validation to hold out whole people (the last images "
                         f"after a multiple of the group size {group_size} of the "
                         f"{len(data.train)} training images), got {spec.validation}")
    people = n_groups(len(data.train), group_size)
    if cross and folds > people:
        raise ValueError(f"expected --verdict-folds at most the {people} training people (groups "
                         f"of {group_size} images), got {folds}")
    if cross:
        # each fold's baselines choose their hyper-parameters by a cross-validation over the
        # other folds (and the anchored energy needs out-of-fold anchor values there): 2 people
        rest = people - max(len(block) for block in torch.arange(people).tensor_split(folds))
        if rest < 2:
            raise ValueError(f"expected at least 2 people (groups of {group_size} images) outside "
                             f"every cross-fit fold for the baselines' cross-validation inside "
                             f"the fold, got {people} training people in {folds} folds")
    elif spec.validation is None:
        data = hold_out(data, n_held)
        people = n_groups(len(data.train), group_size)
    elif spec.validation:
        data = hold_out(data, spec.validation)
        people = n_groups(len(data.train), group_size)
    if (any(c.variant == "anchored" for c in configs) or data.validation is not None) \
            and people < 2:
        raise ValueError(f"expected at least 2 people (groups of {group_size} images) in the "
                         f"training part for the baselines' cross-validation there and the "
                         f"anchored energy's out-of-fold anchor values (K folds of whole people "
                         f"need K >= 2), got {len(data.train)} images = {people} person; use "
                         f"more training images or a smaller validation")
    spec.out.mkdir(parents=True, exist_ok=True)
    # the closed-form baselines choose their hyper-parameters by cross-validation over every
    # training image (folds of whole people) and are fit again on all of them (the rows
    # reported and what ships); the verdict's baselines choose theirs without the people they
    # are validated on. The CNN is trained on the training part and keeps its epoch best on the
    # validation split (without one, the paper's protocol, on its own hold-out of the last
    # training images; under the cross-fit, the epoch best out of fold)
    geometry = configs[0]
    if isinstance(spec.anchor_folds, bool) or not isinstance(spec.anchor_folds, int) \
            or spec.anchor_folds < 2:
        raise ValueError(f"expected folds >= 2, got {spec.anchor_folds!r}")
    blocks = group_folds(len(everything),
                         min(spec.anchor_folds, n_groups(len(everything), group_size)), group_size)
    regressor = RegressorConfig(channels=geometry.channels, kernel_sizes=geometry.kernel_sizes,
                                strides=geometry.strides, dense=geometry.dense,
                                epochs=spec.regressor_epochs, batch_size=geometry.batch_size,
                                lr=geometry.lr, seed=geometry.seed, flip=geometry.flip)
    verdict_blocks: list[torch.Tensor] = []
    cross_errors: dict[str, torch.Tensor] = {}
    closed = tuple(n for n in spec.baselines if n != "cnn")
    # the baselines the verdict compares with and the anchor is chosen among (hyper-parameters
    # chosen without the validating people); per fold under the cross-fit
    per_fold: list[dict[str, BaselineResult]] = []
    checked: dict[str, BaselineResult] = {}
    if cross:
        # every training person validates once: each fold's closed forms choose their
        # hyper-parameters by cross-validation on the other folds and are fit there; the CNN
        # is trained on them
        verdict_blocks = group_folds(len(everything), folds, group_size)
        fitted = fit_baselines_cv(everything, everything, None, data.test, closed, blocks,
                                  flip=geometry.flip)
        log(f"choosing the closed-form baselines inside each of the {folds} cross-fit folds")
        per_fold = fold_baselines(everything, data.test, closed, verdict_blocks,
                                  folds=spec.anchor_folds, group_size=group_size,
                                  flip=geometry.flip)
        cross_errors = closed_form_errors(per_fold, everything, verdict_blocks)
        if "cnn" in spec.baselines:
            fitted["cnn"], cross_errors["cnn"] = _cross_fit_regressor(
                everything, data.test, regressor, verdict_blocks, log)
    else:
        selection = data if data.validation is not None else hold_out(data, n_held)
        fitted = fit_baselines_cv(everything, data.train, data.validation, data.test,
                                  spec.baselines, blocks, flip=geometry.flip, regressor=regressor,
                                  regressor_split=(selection.train, selection.validation))
        if data.validation is not None:
            # the hold-out's verdict and anchor: hyper-parameters chosen on the training part
            part_blocks = group_folds(len(data.train), min(spec.anchor_folds, people),
                                      group_size)
            checked = fit_baselines_cv(data.train, data.train, data.validation, data.test,
                                       closed, part_blocks, flip=geometry.flip)
            if "cnn" in fitted:
                checked["cnn"] = fitted["cnn"]
    for name, result in fitted.items():
        cv = "" if result.cv_mse is None else f"cross-validation MSE {result.cv_mse:.1f}, "
        val = "" if result.val_mse is None else f"validation MSE {result.val_mse:.1f}, "
        if name in cross_errors:
            val += f"cross-fit MSE {float(cross_errors[name].mean()):.1f}, "
        log(f"baseline {name}: {cv}{val}test MSE "
            f"{result.test_mse:.1f} ({result.params})")
    summary: dict[str, Any] = {
        "task": "completion",
        "images": recorded_path(spec.images), "n_images": int(images.shape[0]),
        "n_train": len(data.train), "n_test": len(data.test),
        "n_validation": 0 if data.validation is None else len(data.validation), "mask": spec.mask,
        "image_shape": list(images.shape[1:]), "x_shape": list(data.x_shape),
        "y_shape": list(data.y_shape),
        "metric": "mean over predicted test pixels of (255 * (y_hat - y))**2",
        "test_mse": {}, "methods": {}, "ensemble": spec.ensemble,
        # test MSE per baseline, each fit on every training image (the validation people
        # included; the CNN: its best validation epoch), the fit baseline_details reports
        "baselines": {name: r.test_mse for name, r in fitted.items()},
        "baseline_details": {name: r.record() for name, r in fitted.items()},
        # the hold-out's verdict and anchor: the closed forms chosen on the training part only
        **({"verdict_baselines": {name: r.record() for name, r in checked.items()
                                  if name != "cnn"}} if checked else {}),
        "baseline_selection": {"closed_forms": "cross-validation", "n_images": len(everything),
                               "folds": [len(block) for block in blocks],
                               "group_size": group_size,
                               **({"cnn": "epoch by the cross-fit",
                                   "verdict_folds": [len(block) for block in verdict_blocks],
                                   "verdict_fold_params": [
                                       {name: r.params for name, r in fits.items()
                                        if name != "mean_image"} for fits in per_fold]}
                                  if cross else
                                  {"cnn_n_fit": len(selection.train),
                                   "cnn_n_validation": len(selection.validation)})},
        "validation": (f"cross-fit over every training person, {folds} folds" if cross
                       else "none" if data.validation is None else "hold-out"),
        "protocol": spec.protocol,
        "paper_mse": PAPER_MSE if spec.mask == "left-half" else {},
        "torch": torch.__version__, "threads": torch.get_num_threads(),
        "machine": platform.machine(),
    }
    completions = {}
    for config in configs:
        if cross:
            record, test_completion = _cross_fit_method(data, config, spec, fitted, per_fold,
                                                        cross_errors, verdict_blocks, group_size,
                                                        log)
        elif config.variant == "anchored":
            record, test_completion = _train_anchored(data, config, spec, fitted, checked,
                                                      group_size, log)
        else:
            record, test_completion = _train_method(data, config, spec, log)
            record.update(_method_verdict(record, data, config, spec, checked, group_size))
        summary["test_mse"][config.variant] = record["test_mse"]
        summary["methods"][config.variant] = record
        completions[config.variant] = data.test.to_images(test_completion)
        _write_json(spec.out / "metrics.json", summary)
    # evenly spaced test faces (Olivetti: 10 per person, so this shows every test person)
    shown = torch.linspace(0, len(data.test) - 1, min(spec.show, len(data.test))).round().long()
    save_completions_figure(
        spec.out / "completions.png", data.test.observed_images(0.5)[shown],
        data.test.images[shown], {k: v[shown] for k, v in completions.items()},
        mse=summary["test_mse"],
        title=f"test completions ({spec.mask}); MSE in 0-255 units",
    )
    return summary


def _train_method(data: CompletionData, config: CompletionConfig, spec: CompletionRun,
                  log: Callable[[str], Any]) -> tuple[dict[str, Any], torch.Tensor]:
    """Train ``spec.ensemble`` members of one variant (seeds ``config.seed + k``).

    Returns the method's record for ``metrics.json`` (the ensemble's MSEs when it has several
    members, each member's own under ``members``) and its test completions.
    """
    method_dir = spec.out / config.variant
    members = []
    for k in range(spec.ensemble):
        member = replace(config, seed=config.seed + k)
        log(f"training {config.variant} (seed {member.seed}, {config.epochs} epochs)")
        out_dir = method_dir if spec.ensemble == 1 else method_dir / f"member{k}"
        result = train_completion(data, member, out_dir=out_dir)
        save(result.model.model, out_dir / "model.safetensors",
             metadata={"energy_scale": result.model.scale, "variant": config.variant,
                       "seed": member.seed, "test_mse": result.test_mse})
        members.append(result)
    records = [_result_record(result) for result in members]
    if spec.ensemble == 1:
        record = records[0]
        if data.validation is not None:
            record["_val_errors"] = per_example_mse(predict(
                members[0].model, data.validation, members[0].y0, config.inference,
                config.eval_batch), data.validation)
        return record, members[0].test_completion
    ensemble = CompletionEnsemble([result.model for result in members])
    y0, inference = members[0].y0, config.inference

    def mse(split: CompletionSplit | None) -> float | None:
        if split is None:
            return None
        return paper_mse(predict(ensemble, split, y0, inference, config.eval_batch), split)

    test_completion = predict(ensemble, data.test, y0, inference, config.eval_batch)
    record = {
        "test_mse": paper_mse(test_completion, data.test), "train_mse": mse(data.train),
        "val_mse": mse(data.validation), "ensemble": spec.ensemble,
        "wall_seconds": sum(r["wall_seconds"] for r in records), "seed": config.seed,
        "config": records[0]["config"], "members": records,
    }
    if data.validation is not None:
        record["_val_errors"] = per_example_mse(
            predict(ensemble, data.validation, y0, inference, config.eval_batch), data.validation)
    return record, test_completion


def _method_verdict(record: dict[str, Any], data: CompletionData, config: CompletionConfig,
                    spec: CompletionRun, fitted: dict[str, BaselineResult], group_size: int,
                    ) -> dict[str, Any]:
    """The validation verdict of a non-anchored variant (it still ships its own predictions).

    Pops the per-image validation errors ``_train_method`` left in ``record``; ``fitted`` are
    the baselines with hyper-parameters chosen on the training part (the validation people
    unseen).
    """
    errors = record.pop("_val_errors", None)
    if errors is None:
        return {"verdict": "no validation split (--validation 0): no verdict against the "
                           "baselines is possible", "selected": None,
                "best_on_validation": None}
    verdict = _verdict(config.variant, errors, data, fitted, spec, group_size)
    if verdict["selected"] != config.variant:
        verdict["verdict"] += (f"; {config.variant}'s own predictions are still written (its "
                               f"test_mse), the selected one's test MSE is in baselines")
    return verdict


def _train_anchored(data: CompletionData, config: CompletionConfig, spec: CompletionRun,
                    fitted: dict[str, BaselineResult], checked: dict[str, BaselineResult],
                    group_size: int, log: Callable[[str], Any],
                    ) -> tuple[dict[str, Any], torch.Tensor]:
    """Train the energy anchored to the closed-form baseline best by cross-validation.

    Ship the predictions of the baseline best on validation instead when the energy does not
    beat every baseline measured in the run (:func:`icnn.tasks.completion.verdict.validation_verdict`).

    ``fitted`` are the baselines fit on every training image (their test MSEs are reported and
    the fallback ships one of them); ``checked`` the same baselines with their hyper-parameters
    chosen by cross-validation over the training part only (the validation people unseen): the
    anchor is chosen among them and the verdict compares with them. The energy trains on out-of-fold
    anchor values of the training part (the same grouped folds), is validated (best epoch, and
    the fallback test) with the anchor fit on the training part (the validation people unseen),
    and completes the test images with that same anchor: ``model.safetensors`` and
    ``anchor.safetensors`` reproduce ``energy_test_mse`` (the energy completing the test images
    from the anchor refit on every training image is reported as ``energy_test_mse_full_anchor``).

    "Beats" is a paired comparison over the validation images with every baseline: the mean
    per-image improvement must exceed the one-sided Student-t critical value (``groups - 1``
    degrees of freedom, at the level of ``spec.fallback_z`` normal deviations) in standard
    errors clustered by person (the energy's validation MSE is the best of its epochs, so a bare
    "lower" would favour it by chance; with a single validation person a baseline ships). When
    a baseline ships, it is written to ``shipped.safetensors``
    (:func:`icnn.tasks.completion.baselines.save_anchor`, read by ``load_anchor``).

    Raises:
        ValueError: no validation split (the anchor and the fallback are chosen on it).
    """
    if data.validation is None:
        raise ValueError("expected a validation split for the anchored method (it chooses its "
                         "anchor and checks itself on it), got --validation 0")
    chosen = _choose_anchor(spec, checked)
    log(f"training anchored (anchor {chosen.name}, weight {config.anchor_weight}, seed "
        f"{config.seed}, {config.epochs} epochs)")
    folds = min(spec.anchor_folds, n_groups(len(data.train), group_size))
    values = cross_fitted(chosen, data.train, flip=config.flip, folds=folds,
                          group_size=group_size)
    out_dir = spec.out / config.variant
    part_anchor = fit_on(chosen, data.train, flip=config.flip)
    result = train_completion(data, config, out_dir=out_dir, anchor=part_anchor,
                              anchor_train=values)
    # reported only: the same energy completing the test images from the anchor refit on every
    # training image (what ships is the validated predictor, with the training-part anchor)
    full = fit_on(chosen, concatenate(data.train, data.validation), flip=config.flip)
    result.model.anchor = full.requires_grad_(False)
    energy_test_full_anchor = paper_mse(
        predict(result.model, data.test, result.y0, config.inference, config.eval_batch),
        data.test)
    result.model.anchor = part_anchor
    # the PICNN loads with icnn.load; the anchor it was validated and tested with (fit on the
    # training part) sits beside it: together they reproduce energy_test_mse
    save(result.model.inner.model, out_dir / "model.safetensors",
         metadata={"energy_scale": result.model.scale, "variant": config.variant,
                   "seed": config.seed, "anchor": chosen.name,
                   "anchor_weight": config.anchor_weight, "test_mse": result.test_mse})
    save_anchor(part_anchor, chosen.name, chosen.params, out_dir / "anchor.safetensors")
    record = _result_record(result)
    validation = data.validation
    energy_val = predict(result.model, validation, result.y0, config.inference,
                         config.eval_batch)
    anchor_val = predict_anchor(part_anchor, validation)
    gain = per_example_mse(anchor_val, validation) - per_example_mse(energy_val, validation)
    # images of one person are not independent: the standard error is the one of the people's
    # mean gains (clustered by group; groups of one: per image)
    mean_gain, stderr, per_person = clustered_mean(gain, len(data.train), group_size)
    n_people = len(per_person)
    verdict = _verdict(config.variant, per_example_mse(energy_val, validation), data, checked,
                       spec, group_size)
    shipped = verdict["selected"]
    fallback = shipped != config.variant
    record.update(anchor=chosen.name, anchor_params=chosen.params, anchor_val_mse=chosen.val_mse,
                  anchor_test_mse=chosen.test_mse, energy_val_mse=result.val_mse,
                  anchor_cv_mse=chosen.cv_mse, energy_test_mse=result.test_mse,
                  energy_test_mse_full_anchor=energy_test_full_anchor,
                  val_gain=mean_gain, val_gain_groups=n_people,
                  val_gain_stderr=stderr if math.isfinite(stderr) else None,
                  val_gain_per_group=per_person.tolist(),
                  fallback_z=spec.fallback_z, fallback=fallback,
                  shipped="energy" if not fallback else shipped, **verdict,
                  selected_epoch=result.selected_epoch)
    if not fallback:
        return record, result.test_completion
    winner = fitted[shipped]
    log(f"anchored energy: {verdict['verdict']}; shipping the predictions of {shipped}")
    # the shipped baseline's own file (closed forms: refit on every training image, the fit its
    # test MSE is reported for; the CNN: its best-validation-epoch weights)
    save_anchor(winner.anchor, shipped, winner.params, out_dir / "shipped.safetensors")
    record.update(test_mse=winner.test_mse, val_mse=winner.val_mse, train_mse=winner.train_mse)
    return record, predict_anchor(winner.anchor, data.test)


def _available_anchors(baselines: Sequence[str]) -> tuple[str, ...]:
    """The closed forms a run with ``--baselines baselines`` fits (the possible anchors)."""
    names = ("mean_image", *(n for n in ("ridge", "kernel_ridge") if n in baselines))
    return (*names, "blend") if "ridge" in names and "kernel_ridge" in names else names


def _choose_anchor(spec: CompletionRun, fitted: dict[str, BaselineResult]) -> BaselineResult:
    """The anchored energy's ``g``: ``spec.anchor``, or the closed form best by cross-validation.

    Raises:
        ValueError: ``spec.anchor`` is not a fitted closed-form baseline.
    """
    closed = {k: v for k, v in fitted.items() if k in ANCHORS}
    if spec.anchor != "best" and spec.anchor not in closed:
        raise ValueError(f"expected --anchor best or a fitted closed-form baseline "
                         f"{sorted(closed)}, got {spec.anchor!r}")
    return best_baseline(closed) if spec.anchor == "best" else closed[spec.anchor]


def _cross_fit_regressor(train: CompletionSplit, test: CompletionSplit, config: RegressorConfig,
                         blocks: list[torch.Tensor], log: Callable[[str], Any],
                         ) -> tuple[BaselineResult, torch.Tensor]:
    """The CNN baseline under the cross-fit: its epoch from the out-of-fold curves.

    Returns the CNN trained on every training image with its weights after the epoch best on
    the pooled out-of-fold curve, and its ``(n,)`` out-of-fold errors for the verdict (each fold
    at the epoch best on the other folds, :func:`icnn.tasks.completion.crossfit.choose_epochs`).
    """
    log(f"cross-fitting the cnn baseline ({len(blocks)} folds, {config.epochs} epochs)")
    curves = cross_fit_curves(lambda rest, held: regressor_curve(rest, held, config), train,
                              blocks)
    choice = choose_epochs(curves, blocks)
    grid = [{"epoch": epoch, "cross_fit_mse": mse}
            for epoch, mse in enumerate(choice["curve"], start=1)]
    result = conv_regressor_at(train, test, config, choice["epoch"], grid)
    result.params["fold_epochs"] = choice["fold_epochs"]
    return result, choice["errors"]


def _anchor_fit(chosen: BaselineResult, train: CompletionSplit, config: CompletionConfig,
                spec: CompletionRun, group_size: int) -> tuple[Any, torch.Tensor]:
    """The anchor fit on ``train`` (and mirrors) and its out-of-fold values on ``train``."""
    folds = min(spec.anchor_folds, n_groups(len(train), group_size))
    values = cross_fitted(chosen, train, flip=config.flip, folds=folds, group_size=group_size)
    return fit_on(chosen, train, flip=config.flip), values


def _cross_fit_method(data: CompletionData, config: CompletionConfig, spec: CompletionRun,
                      fitted: dict[str, BaselineResult],
                      per_fold: list[dict[str, BaselineResult]],
                      baseline_errors: dict[str, torch.Tensor], blocks: list[torch.Tensor],
                      group_size: int, log: Callable[[str], Any],
                      ) -> tuple[dict[str, Any], torch.Tensor]:
    """Cross-fit one method over every training person, train it on all, and give its verdict.

    ``fitted``: the baselines chosen and fit on every training image (the final anchor is
    chosen among them, and the fallback ships one of them); ``per_fold``: per fold, the
    closed forms chosen and fit on the other folds only
    (:func:`icnn.tasks.completion.crossfit.fold_baselines`).

    For each fold the method is trained on the other folds for ``config.epochs`` epochs and
    scores the fold's images after every epoch. ``anchored``: with the anchor chosen among that
    fold's ``per_fold`` baselines, fit on the other folds, and trained on out-of-fold anchor
    values inside them. ``averaged``: the fold's completions are blended with that fold anchor's
    predictions at every weight of :data:`icnn.tasks.completion.blend.BLEND_WEIGHTS`, so every
    (epoch, weight) pair is a candidate. The final model is trained on every training image
    (the anchor refit on all of them, as the baselines' rows) and keeps the weights after the
    epoch (and the blend weight) with the lowest pooled out-of-fold MSE. The verdict
    (:func:`icnn.tasks.completion.verdict.validation_verdict`, ``people - 1`` degrees of
    freedom) pairs each image's out-of-fold error with every baseline's; the anchored and the
    averaged recipes ship only if they beat them all, else the baseline with the lowest cross-fit
    MSE ships (``shipped.safetensors``). Other variants ship their own predictions.
    """
    anchored = config.variant in ANCHOR_VARIANTS
    averaged = config.variant == "averaged"
    weights = BLEND_WEIGHTS if averaged else (1.0,)
    chosen = _choose_anchor(spec, fitted) if anchored else None
    # the anchor of each fold: chosen among the baselines chosen without the fold's people
    fold_chosen = [_choose_anchor(spec, fits) for fits in per_fold] if anchored else []
    if anchored and len(fold_chosen) != len(blocks):
        raise ValueError(f"expected the baselines of every one of the {len(blocks)} folds, got "
                         f"{len(fold_chosen)}")
    train = data.train
    log(f"cross-fitting {config.variant} ({len(blocks)} folds of whole people, {config.epochs} "
        f"epochs{f', fold anchors {[c.name for c in fold_chosen]}' if chosen else ''})")
    fold_anchors = iter(fold_chosen)

    def fit_fold(rest: CompletionSplit, held: CompletionSplit) -> torch.Tensor:
        anchor = values = score = None
        if averaged:
            # the fold's baseline, fit on the other folds (the one the verdict scores)
            held_values = predict_anchor(next(fold_anchors).anchor, held)

            def score(completion: torch.Tensor) -> torch.Tensor:
                return blend_errors(completion, held_values, held)
        elif anchored:
            anchor, values = _anchor_fit(next(fold_anchors), rest, config, spec, group_size)
        result = train_completion(CompletionData(rest, data.test, data.mask, held), config,
                                  anchor=anchor, anchor_train=values, keep_epoch=config.epochs,
                                  validation_score=score)
        assert result.val_errors is not None
        curve = result.val_errors.reshape(config.epochs * len(weights), len(held))
        best = curve.mean(1).reshape(config.epochs, len(weights)).min(1).values
        log(f"  fold of {len(held)} images: out-of-fold MSE per epoch "
            f"{', '.join(f'{v:.1f}' for v in best.tolist())}")
        return curve

    started = time.perf_counter()
    curves = cross_fit_curves(fit_fold, train, blocks)
    cross_seconds = time.perf_counter() - started
    # a candidate is an (epoch, blend weight) pair; one weight (1) unless averaged
    choice = choose_epochs(curves, blocks)
    epoch, weight = unravel(choice["epoch"] - 1, weights)
    fold_choices = [unravel(index - 1, weights) for index in choice["fold_epochs"]]
    log(f"training {config.variant} on all {len(train)} training images, keeping epoch "
        f"{epoch} of {config.epochs}{f', blend weight {weight}' if averaged else ''}")
    anchor, values = (None, None) if chosen is None or averaged else _anchor_fit(
        chosen, train, config, spec, group_size)
    out_dir = spec.out / config.variant
    result = train_completion(data, config, out_dir=out_dir, anchor=anchor, anchor_train=values,
                              keep_epoch=epoch)
    metadata = {"energy_scale": result.model.scale, "variant": config.variant,
                "seed": config.seed, "test_mse": result.test_mse, "epoch": epoch}
    test_completion = result.test_completion
    averaged_record: dict[str, Any] = {}
    if averaged:
        assert chosen is not None
        test_completion, averaged_record = _average(result, chosen, weight, data, out_dir,
                                                    metadata)
    elif chosen is not None:
        save(result.model.inner.model, out_dir / "model.safetensors",
             metadata={**metadata, "anchor": chosen.name, "anchor_weight": config.anchor_weight})
        save_anchor(anchor, chosen.name, chosen.params, out_dir / "anchor.safetensors")
    else:
        save(result.model.model, out_dir / "model.safetensors", metadata=metadata)
    errors = {config.variant: choice["errors"], **baseline_errors}
    verdict = validation_verdict(config.variant, errors, 0, group_size, spec.fallback_z,
                                 where="out of fold")
    people = verdict["comparisons"][next(iter(baseline_errors))]["groups"] if baseline_errors \
        else n_groups(len(train), group_size)
    record = _result_record(result)
    pooled = torch.tensor(choice["curve"]).reshape(config.epochs, len(weights))
    record.update(val_mse=verdict["validation_mse"][config.variant], validation="cross-fit",
                  selected_epoch=epoch,
                  cross_fit={"folds": len(blocks), "images": [len(b) for b in blocks],
                             "people": people, "dof": people - 1,
                             "critical": t_critical(spec.fallback_z, people - 1)
                             if people > 1 else None,
                             "epoch": epoch, "fold_epochs": [e for e, _ in fold_choices],
                             "fold_anchors": [{"anchor": c.name, "params": c.params}
                                              for c in fold_chosen],
                             "curve": pooled.min(1).values.tolist(),
                             **({"blend_weights": list(weights), "blend_weight": weight,
                                 "fold_blend_weights": [w for _, w in fold_choices],
                                 "curve_per_weight": pooled.tolist()} if averaged else {}),
                             "wall_seconds": cross_seconds},
                  **verdict)
    if chosen is None:
        if verdict["selected"] != config.variant:
            record["verdict"] += (f"; {config.variant}'s own predictions are still written (its "
                                  f"test_mse), the selected one's test MSE is in baselines")
        return record, test_completion
    gain = baseline_errors[chosen.name] - choice["errors"]
    mean_gain, stderr, per_person = clustered_mean(gain, 0, group_size)
    shipped = verdict["selected"]
    fallback = shipped != config.variant
    record.update(averaged_record)
    record.update(anchor=chosen.name, anchor_params=chosen.params, anchor_cv_mse=chosen.cv_mse,
                  anchor_val_mse=verdict["validation_mse"][chosen.name],
                  anchor_test_mse=chosen.test_mse, energy_val_mse=record["val_mse"],
                  energy_test_mse=record["test_mse"], energy_train_mse=record["train_mse"],
                  val_gain=mean_gain, val_gain_groups=len(per_person),
                  val_gain_stderr=stderr if math.isfinite(stderr) else None,
                  val_gain_per_group=per_person.tolist(), fallback_z=spec.fallback_z,
                  fallback=fallback,
                  shipped=("averaged" if averaged else "energy") if not fallback else shipped)
    if not fallback:
        return record, test_completion
    winner = fitted[shipped]
    log(f"{config.variant}: {verdict['verdict']}; shipping the predictions of {shipped}")
    save_anchor(winner.anchor, shipped, winner.params, out_dir / "shipped.safetensors")
    record.update(test_mse=winner.test_mse, val_mse=verdict["validation_mse"][shipped],
                  train_mse=winner.train_mse)
    return record, predict_anchor(winner.anchor, data.test)


def _average(result: CompletionResult, chosen: BaselineResult, weight: float,
             data: CompletionData, out_dir: Path, metadata: dict[str, Any],
             ) -> tuple[torch.Tensor, dict[str, Any]]:
    """The averaged recipe's final predictor: the ICNN's completions blended with ``chosen``.

    Writes the ICNN (``model.safetensors``, with ``blend_weight``, ``anchor`` and
    ``averaged_test_mse`` beside its own ``test_mse``) and the baseline fit on every training
    image (``anchor.safetensors``). Returns the blended test completions and the record's
    entries: the blend's test and train MSE, the ICNN's own, and the weight.
    """
    test_completion = blend(result.test_completion, predict_anchor(chosen.anchor, data.test),
                            weight)
    test_mse = paper_mse(test_completion, data.test)
    save(result.model.model, out_dir / "model.safetensors",
         metadata={**metadata, "anchor": chosen.name, "blend_weight": weight,
                   "averaged_test_mse": test_mse})
    save_anchor(chosen.anchor, chosen.name, chosen.params, out_dir / "anchor.safetensors")
    train = data.train
    train_blend = blend(result.train_completion, predict_anchor(chosen.anchor, train), weight)
    return test_completion, {"test_mse": test_mse, "train_mse": paper_mse(train_blend, train),
                             "icnn_test_mse": result.test_mse,
                             "icnn_train_mse": result.train_mse, "blend_weight": weight}


def _verdict(candidate: str, candidate_errors: torch.Tensor, data: CompletionData,
             fitted: dict[str, BaselineResult], spec: CompletionRun, group_size: int,
             ) -> dict[str, Any]:
    """The validation verdict of ``candidate`` against every baseline measured in the run."""
    assert data.validation is not None
    errors = {candidate: candidate_errors}
    for name, result in fitted.items():
        if result.val_anchor is not None:
            errors[name] = per_example_mse(predict_anchor(result.val_anchor, data.validation),
                                           data.validation)
    return validation_verdict(candidate, errors, len(data.train), group_size, spec.fallback_z)


def _result_record(result: CompletionResult) -> dict[str, Any]:
    return {
        "test_mse": result.test_mse, "train_mse": result.train_mse, "val_mse": result.val_mse,
        "wall_seconds": result.wall_seconds, "seed": result.config["seed"],
        "energy_scale": result.model.scale, "config": result.config,
        "selected_epoch": result.selected_epoch,
        "curve": [{k: v for k, v in record.items() if k in ("epoch", "train_loss",
                                                             "val_mse", "test_mse")}
                  for record in result.history],
    }


def _write_json(path: Path, record: dict[str, Any]) -> None:
    text = json.dumps(record, indent=1)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))
