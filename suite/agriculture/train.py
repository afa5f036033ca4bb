"""The tomato recipe and the commands that train the shipped solution.

    python -m suite.agriculture.train --data /path/to/plantvillage_tomato --out runs/tomato \
        --ship suite/agriculture/solutions/tomato --half
    python -m suite.agriculture.train --data /path/to/plantvillage_tomato --out runs/tomato_light --augment light
    python -m suite.agriculture.train --data /path/to/plantvillage_tomato --out runs/tomato_soup \
        --soup runs/tomato runs/tomato_light

Recipe (the shipped model's): ImageNet EfficientNet-Lite2 (embedded), every layer fine-tuned
(``partial`` over all 22 backbone groups) at 288 px for 20 epochs with the ``field_mix`` augmentation
preset (each photo gets ``field`` or ``light``) on every photo outside a leaf-aware test split that
the model never sees (about 65 min per run on one core of a 2-core CPU). Its input guard reads the
untouched ImageNet backbone (``--guard pretrained``), which never trained on a leaf, so a held-out
fifth of the training photos sets its threshold and none is kept out of training; ``--guard model
--calibration 0.1`` guards on the fine-tuned backbone, with a tenth of the training leaves kept out
of training for it. ``--soup`` averages the weights of finished runs of the same split (a uniform
model soup); ``--ensemble`` keeps their networks and averages their probabilities (the shipped
``tomato_ensemble``). ``--ship DIR`` also writes the Solution with the agriculture model card
(per-class recall, confidence intervals, ONNX size and latency) to ``DIR``; ``--half`` stores it in
float16.
``--resume`` continues a stopped run; ``--ship-run`` ships a finished one, fitting the guard that
``--guard`` names when the run's differs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from suite.core.errors import SuiteError
from suite.core.ood import GUARD_READS

BACKBONE = "embedded:efficientnet_lite2"
TEST_FRACTION = 1 / 6  # 20 of 120 images per class in the PlantVillage tomato set
RECIPE_OPTIONS = ("backbone", "image_size", "n_groups", "epochs", "lr", "lr_decay", "batch_size", "augment",
                  "label_smoothing", "seed", "calibration", "guard")


@dataclass
class Recipe:
    """What the shipped tomato solution was trained with (every field is a command-line option)."""

    backbone: str = BACKBONE
    image_size: int = 288
    n_groups: int = 22  # all of EfficientNet-Lite2's backbone groups: every layer trains
    epochs: int = 20
    lr: float = 1e-3
    lr_decay: float = 1.0  # each backbone group below the head trains at this times the LR of the one above
    batch_size: int = 16
    augment: str = "field_mix"  # each photo gets the "field" or the "light" preset, half and half
    label_smoothing: float = 0.1
    seed: int = 0
    calibration: float = 0.0  # share of the training leaves kept out of training to set the input guard's threshold
    guard: str = "pretrained"  # the backbone the input guard reads: the untouched ImageNet one, or "model"
    extra: dict = field(default_factory=dict)

    def train_config(self, progress: bool = True, workers: int = 0):
        from suite.core.trainer import TrainConfig

        return TrainConfig(strategy="partial", strategy_options={"n_groups": self.n_groups, "lr_decay": self.lr_decay}, epochs=self.epochs,
                           lr=self.lr, batch_size=self.batch_size, augment=self.augment,
                           label_smoothing=self.label_smoothing, seed=self.seed, progress=progress,
                           num_workers=workers)


def leaf_splits(data, seed: int = 0, test: float = TEST_FRACTION, calibration: float = 0.0) -> dict:
    """Train/test (and calibration) index arrays: stratified, whole leaves on one side (what ``finetune``
    uses). The test split does not depend on ``calibration``, which is cut from the training split."""
    from suite.core.finetune import make_splits

    splits = make_splits(data, None, None, 0.0, test, seed, calibration)[1]
    return {k: v for k, v in splits.items() if len(v)}


def train(data, out: str | os.PathLike | None, recipe: Recipe | None = None, progress: bool = True,
          name: str = "tomato", workers: int = 0, resume: bool = False):
    """Fine-tune on leaf data (a path or LabeledData) with the recipe; returns the FinetuneResult.

    The test split (leaf-aware, ``TEST_FRACTION`` of each class) is never trained on; no validation
    split is held out, so the last epoch is kept. ``recipe.calibration`` of the training leaves are
    not trained on either: they set the input guard's threshold (see ``suite.core.ood``); the guard
    reads the backbone ``recipe.guard`` names. ``resume``
    continues a stopped run in ``out`` from its last finished epoch (same recipe; it ends where an
    uninterrupted run would).
    """
    from suite.core.finetune import finetune

    from .data import load_leaves

    recipe = recipe or Recipe()
    if not hasattr(data, "labels"):
        data = load_leaves(data)
    return finetune(data, backbone=recipe.backbone, config=recipe.train_config(progress, workers), output_dir=out, val=0.0,
                    test=TEST_FRACTION, image_size=recipe.image_size, name=name, resume=resume,
                    calibration=recipe.calibration, guard_reads=recipe.guard)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m suite.agriculture.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="PlantVillage-style class folders or a CSV manifest")
    parser.add_argument("--out", required=True, help="run folder (solution/, report/, train/)")
    parser.add_argument("--ship", help="also write the Solution with the agriculture model card here")
    parser.add_argument("--leaf-col", help="CSV column with a leaf or plant id")
    parser.add_argument("--leaf-pattern", help="regular expression whose first group in a file name is the leaf id")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--workers", type=int, default=0,
                        help="data-loading processes (0: in the training process; use a few on a GPU machine)")
    parser.add_argument("--ship-run", action="store_true",
                        help="do not train: ship the run already in --out (its recipe, report and seconds) to --ship")
    parser.add_argument("--soup", nargs="+", metavar="RUN",
                        help="do not train: average these finished runs (same split seed) into one model "
                             "(a uniform model soup) written to --out, and shipped with --ship")
    parser.add_argument("--ensemble", nargs="+", metavar="RUN",
                        help="do not train: keep these finished runs (same split seed) side by side, their "
                             "probabilities averaged (one network per run at every prediction), written to --out "
                             "and shipped with --ship")
    parser.add_argument("--resume", action="store_true",
                        help="continue the stopped run in --out from its last finished epoch (same options)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--half", action="store_true",
                        help="store the shipped weights as float16 (the reloaded solution is scored again; the "
                             "card reports that score when a test prediction moved)")
    defaults = Recipe()
    for key in RECIPE_OPTIONS:
        value = getattr(defaults, key)
        parser.add_argument("--" + key.replace("_", "-"), type=type(value), default=value, help=f"default {value}",
                            choices=GUARD_READS if key == "guard" else None)
    args = parser.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from .data import load_leaves

    recipe = Recipe(**{k: getattr(args, k) for k in RECIPE_OPTIONS})
    if args.soup or args.ensemble:
        try:
            combine_runs(args.soup or args.ensemble, args.data, args.out, args.ship, half=args.half,
                         how="soup" if args.soup else "ensemble", guard=args.guard, leaf_col=args.leaf_col,
                         leaf_pattern=args.leaf_pattern)
            return 0
        except SuiteError as exc:
            print(f"error: {exc}")
            return 2
    if args.ship_run:
        try:
            return ship_run(args.out, args.data, args.ship, half=args.half, guard=args.guard, leaf_col=args.leaf_col,
                            leaf_pattern=args.leaf_pattern)
        except SuiteError as exc:
            print(f"error: {exc}")
            return 2
    try:
        data = load_leaves(args.data, leaf_col=args.leaf_col, leaf_pattern=args.leaf_pattern)
        start = time.perf_counter()
        result = train(data, args.out, recipe, progress=not args.quiet, workers=args.workers, resume=args.resume)
        seconds = time.perf_counter() - start
        if args.resume:  # the whole run's training time, over every session
            seconds = result.history[-1]["seconds"] if result.history else seconds
    except SuiteError as exc:
        print(f"error: {exc}")
        return 2
    metrics = result.report.get("metrics", {})
    ci = result.report.get("ci95", {}).get("accuracy")
    print(f"test accuracy {metrics.get('accuracy'):.4f} 95% CI {ci} ({seconds:.0f} s)")
    (Path(args.out) / "run.json").write_text(json.dumps({"recipe": recipe.__dict__, "seconds": seconds,
                                                         "data": str(args.data), "command": _command(args)},
                                                        indent=2))
    if args.ship:
        _ship(result, data, args.ship, recipe, seconds, _command(args), args.half)
        print(f"solution with model card written to {args.ship}")
    return 0


COMBINE = {"soup": "uniform soup", "ensemble": "ensemble"}  # how finished runs become one Solution


def combine_runs(runs: list, data_path, out: str | os.PathLike, ship: str | None = None, half: bool = False,
                 how: str = "soup", guard: str | None = None, **load_options):
    """Combine finished runs (their ``--out`` folders) into one Solution: ``how="soup"`` averages their
    weights (a uniform soup, Wortsman et al. 2022, one network); ``how="ensemble"`` keeps every network
    and averages their probabilities. Fit its input guard on the training split, score it on the runs'
    shared test split, write ``out`` like a run (``solution/``, ``report/``, ``run.json``) and, with
    ``ship``, ship it with the card; its guard reads ``guard`` (default: the first run's). Every run
    must come from the same data and split seed (the test split stays unseen by each)."""
    from types import SimpleNamespace

    from suite.core import Solution
    from suite.core.ensemble import ensemble_solutions
    from suite.core.evaluation import write_report
    from suite.core.finetune import evaluate_solution
    from suite.core.soup import uniform_soup

    from .data import load_leaves

    if how not in COMBINE:
        raise SuiteError(f"runs combine as {' or '.join(COMBINE)}, not {how!r}")
    infos = []
    for run in map(Path, runs):
        if not (run / "run.json").is_file() or not (run / "solution" / "config.json").is_file():
            raise SuiteError(f"{run}: no run.json or solution/; is it a finished `python -m suite.agriculture.train` run?")
        infos.append(json.loads((run / "run.json").read_text()))
    recipes = [recorded_recipe(i) for i in infos]
    if len({r.seed for r in recipes}) > 1:  # the seed fixes the test split (a calibration share does not)
        raise SuiteError("runs to combine must share their seed (it fixes the test split): "
                         + ", ".join(f"{run}: {r.seed}" for run, r in zip(runs, recipes)))
    started = time.perf_counter()
    combine = uniform_soup if how == "soup" else ensemble_solutions
    combined = combine([Solution.load(Path(run) / "solution") for run in runs])
    combined.name = "tomato"
    import torch

    if torch.cuda.is_available():  # its guard and test scoring run where training ran
        combined.model.to("cuda")
    data = load_leaves(data_path, **load_options)
    guard = guard or recipes[0].guard
    splits = fit_guard(combined, data, recipes[0], reads=guard)
    test = data.subset(splits["test"])
    desc = f"test split of {data.source} ({len(test)} items, never trained on)"
    report, probs = evaluate_solution(combined, test, data_desc=desc, seed=recipes[0].seed)
    combined.metrics = {"data": desc, **report["metrics"], "ci95": report["ci95"]}
    out = Path(out)
    write_report(report, out / "report", test.labels, probs, title=f"tomato: {COMBINE[how]} of {len(runs)} runs")
    combined.save(out / "solution")
    recipe = Recipe(**{**vars(recipes[0]), "augment": "+".join(r.augment for r in recipes), "guard": guard,
                       "extra": {how: [str(run) for run in runs]}})
    seconds = sum(i.get("seconds") or 0 for i in infos) + time.perf_counter() - started
    command = "\n".join([_recipe_command(run, r, data_path) for run, r in zip(runs, recipes)] + [
        f"python -m suite.agriculture.train --data {data_path} --out {out} --{how} {' '.join(map(str, runs))}"
        + f" --guard {guard}" + (f" --ship {ship}" if ship else "") + (" --half" if half else "")])
    (out / "run.json").write_text(json.dumps({"recipe": vars(recipe), "seconds": seconds,
                                              "data": str(data_path), "command": command}, indent=2))
    accuracy, ci = report["metrics"]["accuracy"], report["ci95"]["accuracy"]
    print(f"{COMBINE[how]} of {len(runs)} runs: test accuracy {accuracy:.4f} 95% CI {ci}")
    if ship:
        _ship(SimpleNamespace(solution=combined, report=report), data, ship, recipe, seconds, command, half)
        print(f"solution with model card written to {ship}")
    return combined, report


def ship_run(run: str | os.PathLike, data_path, ship: str | None, half: bool = False, guard: str | None = None,
             **load_options) -> int:
    """Ship a finished run folder (``run.json``, ``solution/``, ``report/report.json``) with the model card.

    ``guard`` (a backbone the input guard reads) other than the run's fits that guard first, on the
    run's training split (the guard does not change the model, so the run's report still holds)."""
    from types import SimpleNamespace

    from suite.core import Solution

    from .data import load_leaves

    run = Path(run)
    if not ship:
        raise SuiteError("--ship-run needs --ship DIR")
    for needed in ("run.json", "solution/config.json", "report/report.json"):
        if not (run / needed).is_file():
            raise SuiteError(f"{run}: no {needed}; is it a finished `python -m suite.agriculture.train` run?")
    info = json.loads((run / "run.json").read_text())
    recipe = recorded_recipe(info)
    command = _recorded_command(run, info, recipe, data_path)
    if "--ship" not in command:
        command += f" --ship {ship}" + (" --half" if half else "")
    data = load_leaves(data_path, **load_options)
    result = SimpleNamespace(solution=Solution.load(run / "solution"),
                             report=json.loads((run / "report" / "report.json").read_text()))
    if guard and guard != recipe.guard:
        fit_guard(result.solution, data, recipe, reads=guard)
        print(f"input guard fitted again: it reads the {guard} backbone (the run's read the {recipe.guard} one)")
        command = re.sub(r" --guard \S+", "", command).replace(" --ship", f" --guard {guard} --ship", 1)
        recipe.guard = guard
    _ship(result, data, ship, recipe, info.get("seconds"), command, half)
    print(f"solution with model card written to {ship}")
    return 0


def fit_guard(solution, data, recipe: Recipe, reads: str | None = None) -> dict:
    """Fit ``solution``'s input guard as ``train`` does (on the recipe's training split, threshold on its
    calibration leaves when it has them), reading ``reads`` (default: the recipe's); returns the splits."""
    splits = leaf_splits(data, seed=recipe.seed, calibration=recipe.calibration)
    unseen = splits.get("calibration")
    solution.fit_guard(data.subset(splits["train"]), calibration=None if unseen is None else data.subset(unseen),
                       reads=reads or recipe.guard)
    return splits


def recorded_recipe(info: dict) -> Recipe:
    """The Recipe a run's ``run.json`` recorded (runs recorded before ``calibration`` existed trained on
    every training leaf: 0; before ``guard`` existed, their guard read the fine-tuned model)."""
    recorded = {"calibration": 0.0, "guard": "model", **info["recipe"]}
    return Recipe(**{k: v for k, v in recorded.items() if k in vars(Recipe())})


def _recorded_command(run, info: dict, recipe: Recipe, data_path) -> str:
    """The command a finished run recorded, or the one that reproduces its recipe (runs before it was recorded)."""
    return info.get("command") or _recipe_command(run, recipe, data_path)


def _recipe_command(run, recipe: Recipe, data_path) -> str:
    """The command that trains ``recipe`` into ``run`` with today's defaults (a recorded command names
    only the options off the defaults of its day)."""
    from types import SimpleNamespace

    return _command(SimpleNamespace(data=data_path, out=str(run), ship=None, leaf_col=None, leaf_pattern=None,
                                    **vars(recipe)))


def _shipped_report(ship, trained, data, report: dict, seed: int = 0) -> dict | None:
    """Score the shipped (reloaded) solution on the run's test split; ``None`` when every prediction is
    the trained model's, else the reloaded model's report (float16 storage can move a borderline photo)."""
    import numpy as np

    from suite.core import Solution
    from suite.core.evaluation import evaluate_predictions

    test = data.subset(leaf_splits(data, seed=seed)["test"])
    images = [test.load(i) for i in range(len(test))]
    before = np.asarray(trained.predict_proba(images))
    if abs(float((before.argmax(1) == test.labels).mean()) - report["metrics"]["accuracy"]) > 1e-9:
        raise SuiteError(f"the run's report does not match its test split (accuracy "
                         f"{report['metrics']['accuracy']:.4f}): was it trained on other data?")
    shipped = Solution.load(ship)
    after = np.asarray(shipped.predict_proba(images))
    changed = int((before.argmax(1) != after.argmax(1)).sum())
    print(f"shipped solution checked: {changed} of {len(test)} test predictions changed (max |dp| "
          f"{np.abs(before - after).max():.1e})")
    if not changed:
        return None
    return evaluate_predictions(test.labels, after, shipped.labels, task=shipped.task, data_desc=report.get("data", ""))


def _ship(result, data, ship, recipe, seconds, command: str, half: bool) -> None:
    """Ship with the card; with ``half``, the card reports the reloaded float16 solution's metrics."""
    from types import SimpleNamespace

    from .card import ship_solution

    dtype = "float16" if half else "float32"
    ship_solution(result, data, ship, recipe, seconds, command=command, storage_dtype=dtype)
    reloaded = _shipped_report(ship, result.solution, data, result.report, seed=recipe.seed)
    if reloaded is not None:
        ship_solution(SimpleNamespace(solution=result.solution, report=reloaded), data, ship, recipe, seconds,
                      command=command, storage_dtype=dtype)


def _command(args) -> str:
    """The command line that reproduces this run: data, folders and every recipe option off its default."""
    defaults = Recipe()
    options = "".join(f" --{key.replace('_', '-')} {getattr(args, key)}" for key in vars(defaults)
                      if key != "extra" and getattr(args, key, None) not in (None, getattr(defaults, key)))
    leaf = "".join(f" --{key.replace('_', '-')} '{getattr(args, key)}'" for key in ("leaf_col", "leaf_pattern")
                   if getattr(args, key, None))
    return ("python -m suite.agriculture.train --data " + str(args.data) + " --out " + str(args.out) + options + leaf
            + (f" --ship {args.ship}" if args.ship else "") + (" --half" if getattr(args, "half", False) else ""))


if __name__ == "__main__":
    raise SystemExit(main())
