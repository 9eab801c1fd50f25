"""What a finished `snakemake` run prints last: what was packed, each model's validation scores, every warning.

The per-job logs hold everything, but nobody reads 75 log files after a run that ended green. A user who pointed
the pipeline at new data needs to see, where the run ends, that a model did not learn or that TTA hurt it, with
the key to change (the warnings are written by `deepsea.report.evaluate.diagnose`). It reads and never fails: a missing
or unreadable evaluation is left out. Cluster jobs run with `--no-hooks`, so only the submitting Snakemake prints it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from deepsea.data.orientation import OrientationCheck, check_from_report, decide_orientation, upright_warning
from deepsea.errors import DeepseaError
from deepsea.io import read_json
from deepsea.nets.families import rotation_invariant
from deepsea.training.settings import auto_input_size


def turns_images_over(runs: Mapping[str, Mapping], tta: Mapping) -> list[str]:
    """What in a workflow config turns images over or mirrors them (so that orientation cannot tell classes apart):
    rotation-invariant architectures, augmentation or test-time views that flip or turn by 90 degrees or more.

    `runs` and `tta` as the Snakefile holds them, every default filled in by the config schema."""
    found = []
    for name, settings in runs.items():
        augmentation = settings["augmentation"]
        if rotation_invariant(settings["architecture"]):
            found.append(f"{name} is rotation-invariant ({settings['architecture']})")
        elif augmentation["flip"] or augmentation["rotation"] >= 90:
            found.append(f"{name}'s augmentation flips or turns the images")
    if tta["flip"] or tta["rotation"] >= 90:
        found.append("the test-time views flip or turn the images")
    return found


def orientation_summary(
    data: Mapping, models: Mapping[str, Mapping], train_report: str | os.PathLike[str]
) -> list[str]:
    """The run's first lines: how it turned the images (data.orientation, decided from the pack report for auto),
    and, for upright images, which models are rotation-invariant anyway (the ensemble weighs them)."""
    try:
        check = check_from_report(read_json(train_report))
        orientation = decide_orientation(data["orientation"], data["mirror"], check)
    except (DeepseaError, OSError, ValueError, KeyError, TypeError):
        return []  # a courtesy, as run_summary
    lines = [f"deepsea: {orientation.describe()}"]
    invariant = [name for name, entry in models.items() if rotation_invariant(entry["architecture"])]
    if orientation.upright and invariant:
        lines.append(
            f"deepsea: {', '.join(invariant)} are rotation-invariant by construction (a 6 is a 9 to them): the "
            "ensemble weights decide how much they count; workflow/configs/upright.yaml trains plain only, faster"
        )
    return lines


def data_summary(report_paths: Iterable[str | os.PathLike[str]], turned_by: Sequence[str] = ()) -> list[str]:
    """One line per packed subset (results/data/*_report.json): what was read, so a surprise shows at the end.

    `turned_by`: what in the config turns images over (`turns_images_over`), for the warning given
    when the training images look upright."""
    rows: list[str] = []
    for path in map(Path, report_paths):
        try:
            report = read_json(path)
            line = f"  {report['subset']}: {report['n_images']} image{'s' if report['n_images'] != 1 else ''}"
            if report["per_class"]:
                line += f" in {len(report['per_class'])} classes"
            line += f", {report['min_side']}-{report['max_side']} px"
            if report.get("background") == "dark":
                line += ", dark background (stored inverted: data.background)"
            if report.get("background_mismatch"):
                line += f", WARNING {report['background_mismatch']}"
            if report.get("upright_score") is not None:
                check = OrientationCheck(report["upright_score"], report["upright_images"])
                warning = upright_warning(check, turned_by)
                if warning:
                    line += f", WARNING {warning}"
            if report.get("duplicates"):
                copies = sum(len(group) for group in report["duplicates"])
                line += f", {copies} identical copies in {len(report['duplicates'])} sets"
                if report.get("duplicates_across_classes"):
                    line += f" ({report['duplicates_across_classes']} across classes: label noise)"
            if report.get("copies_of_training_images"):
                line += f", {len(report['copies_of_training_images'])} identical to training images"
            if report["skipped"]:
                line += f", {len(report['skipped'])} bad file(s) skipped (listed in {path})"
            if report["converted"]:
                line += ", converted: " + ", ".join(f"{n} {kind}" for kind, n in report["converted"].items())
            rows.append(line)
        except (DeepseaError, OSError, ValueError, KeyError, TypeError):
            continue  # the summary is a courtesy (see run_summary)
    return ["deepsea: data (results/data/):", *rows] if rows else []


def input_size_summary(models: Mapping[str, Mapping], train_report: str | os.PathLike[str]) -> list[str]:
    """Which input size `input_size: auto` chose for each entry that asks for it, from the pack report's
    longest-side percentile (the same number training resolves it from: training/settings.py)."""
    auto = {name: entry for name, entry in models.items() if entry.get("input_size") == "auto"}
    if not auto:
        return []
    try:
        p75 = float(read_json(train_report)["longest_side_p75"])
    except (DeepseaError, OSError, ValueError, KeyError, TypeError):
        return []  # a courtesy, as run_summary
    sizes = ", ".join(
        f"{name} {auto_input_size(p75, entry['architecture'], entry.get('params', {}))} px"
        for name, entry in auto.items()
    )
    return [f"deepsea: input_size auto (3 in 4 training images at most {p75:.0f} px on their longest side): {sizes}"]


def run_summary(eval_paths: Iterable[str | os.PathLike[str]]) -> list[str]:
    """Lines of the summary for the evaluation files that exist (a run with one target leaves the others out)."""
    rows: list[str] = []
    problems: dict[str, list[str]] = {}  # fix -> the problems it answers, so a fix shared by many models shows once
    for path in map(Path, eval_paths):
        try:
            scores = read_json(path)
            name = path.stem if path.parent.name != "fused" else f"{path.stem} (fused)"
            line = f"  {name:<36} {scores['valid']['log_loss']:.4f}"
            if "tta" in scores:
                line += f"   TTA mean {scores['tta']['log_loss']:.4f}"
            if "centre" in scores:
                line += f"   centre view {scores['centre']['log_loss']:.4f}"
            if scores.get("views_used") == "centre":
                line += " (used)"
            rows.append(line + f"   class prior {scores['class_prior']['log_loss']:.4f}")
            for warning in scores.get("warnings", []):
                problems.setdefault(warning["fix"], []).append(f"  {name}: {warning['problem']}")
        except (DeepseaError, OSError, ValueError, KeyError, TypeError):  # e.g. missing, malformed, older
            continue  # not there yet, or written by an older version: the summary is a courtesy
    if not rows:
        return []
    lines = ["deepsea: validation log loss (results/eval/):", *rows]
    if problems:
        lines.append(f"deepsea: {sum(map(len, problems.values()))} warning(s) about these results:")
        for fix, found in problems.items():
            lines += [*found, f"    -> {fix}"]
    return lines


def blend_summary(ensemble_path: str | os.PathLike[str], final_path: str | os.PathLike[str]) -> list[str]:
    """The ensemble's blend and weights, and the final blend's fitted weight with the losses it chose between: so
    the end of a run says whether the pseudo-label models were worth their share."""
    lines: list[str] = []
    try:
        ens = read_json(ensemble_path)
        weights = ", ".join(f"{name} {w:.3f}" for name, w in ens["weights"].items())
        losses, fitted = ens["valid_log_loss"], ens.get("adoption", {}).get("adopted", "fitted") == "fitted"
        used = f"{losses.get('used', losses['weighted']):.4f} ({'in-sample' if fitted else 'uniform: nothing fitted'})"
        lines.append(
            f"deepsea: ensemble ({ensemble_path}): {ens['mean']} blend, valid log loss {used}; weights {weights}"
        )
        if "adoption" in ens:
            lines.append(f"    -> weights {ens['adoption']['reason']}")
    except (DeepseaError, OSError, ValueError, KeyError, TypeError, AttributeError):
        pass  # a courtesy, as run_summary
    try:
        if Path(final_path).exists():
            fit = read_json(final_path)
            losses = fit["valid_log_loss"]
            used = losses.get("used", losses["fitted"])
            lines.append(
                f"deepsea: final blend ({final_path}): pseudo-label weight {fit['final_weight']:.2f}, valid log loss "
                f"{used:.4f} (ensemble out-of-fold {losses['ensemble_out_of_fold']:.4f}, pseudo-label models "
                f"{losses['pseudo_labels']:.4f}, half and half {losses['half_and_half']:.4f})"
            )
            if "adoption" in fit:
                lines.append(f"    -> weight {fit['adoption']['reason']}")
    except (DeepseaError, OSError, ValueError, KeyError, TypeError):
        pass
    return lines


def bundle_summary(bundle: str | os.PathLike[str]) -> list[str]:
    """Where the trained ensemble is, and the command that classifies new images with it (docs/classify.md)."""
    if not (Path(bundle) / "manifest.json").is_file():  # (deploy/bundle.py's MANIFEST; not imported at start-up)
        return []
    return [
        f"deepsea: model bundle {bundle}/ (copy it anywhere): deepsea classify --bundle {bundle} --images FOLDER "
        "--out FILE.csv"
    ]
