"""The ``suite`` command: one entry point that dispatches to the core and the verticals.

Problems the user can fix (a bad spec, a missing file) print one ``error:`` line and exit 2.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {}


def command(name: str, help: str):
    """Register a subcommand: the decorated function adds its arguments, ``run`` executes it."""

    def deco(add_args):
        def bind(run):
            COMMANDS[name] = (help, add_args, run)
            return run

        add_args.bind = bind
        return add_args

    return deco


# --- suite models ---------------------------------------------------------------------------------
@command("models", "list model specs and whether each works offline right now")
def _models_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--source", help="only this source (embedded, timm, tv, hf, monai)")


@_models_args.bind
def _models_run(args: argparse.Namespace) -> int:
    from suite.core import list_models, sources

    rows = [r for r in list_models() if not args.source or r.spec.startswith(args.source + ":")]
    if args.json:
        print(json.dumps([r.__dict__ for r in rows], indent=2))
        return 0
    print("Sources:")
    for prefix, src in sorted(sources().items()):
        print(f"  {prefix + ':':<10}{src.description}")
    print()
    width = max(len(r.spec) for r in rows) + 2
    print(f"{'spec':<{width}}{'input':<8}{'offline':<9}note")
    for r in rows:
        print(f"{r.spec:<{width}}{r.modality:<8}{'yes' if r.offline else 'no':<9}{r.note}")
    print("\nAny timm, torchvision, MONAI or Hugging Face name works with its prefix; "
          "'offline: no' means it needs network or a filled cache.")
    return 0


# --- suite predict --------------------------------------------------------------------------------
@command("predict", "predict with a Solution on files, folders, a CSV of paths or texts, or texts")
def _predict_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("solution", help="Solution directory")
    p.add_argument("inputs", nargs="+", help="image files, folders, or text (with --text)")
    p.add_argument("--text", action="store_true", help="treat inputs as texts, not paths")
    p.add_argument("--column", help="CSV column to read (default: path for images, text for text)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--json", action="store_true", help="print one JSON object per input")


def _csv_column(path: Path, column: str) -> list[str]:
    """One column of a CSV file (UTF-8, else Latin-1), with a clear error when it is missing."""
    import csv

    from suite.core import SuiteError

    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    rows = list(csv.DictReader(text.splitlines()))
    if not rows or column not in rows[0]:
        have = ", ".join(rows[0]) if rows else "no rows"
        raise SuiteError(f"{path}: no column {column!r} (columns: {have}); choose one with --column")
    return [r[column] for r in rows]


@_predict_args.bind
def _predict_run(args: argparse.Namespace) -> int:
    from suite.core import Solution

    sol = Solution.load(args.solution)
    is_text = sol.preprocess.modality == "text"
    if args.text:
        items, names = list(args.inputs), list(args.inputs)
    else:
        items, names = [], []
        for inp in args.inputs:
            path = Path(inp)
            if path.is_dir():
                found = sorted(str(f) for f in path.rglob("*") if f.suffix.lower() in sol.input_suffixes)
                items += found
                names += found
            elif path.suffix.lower() in (".csv", ".tsv"):
                column = args.column or ("text" if is_text else "path")
                values = _csv_column(path, column)
                items += values if is_text else [str((path.parent / v)) for v in values]
                names += values
            else:
                items.append(inp)
                names.append(inp)
    skipped = 0
    if sol.preprocess.modality == "image":  # an unreadable file is reported; the others still get predictions
        problems = [sol.check_input(item, name) for item, name in zip(items, names)]
        for name, problem in zip(names, problems):
            if problem:
                print(f"skipped {name}: {problem}", file=sys.stderr)
        skipped = sum(p is not None for p in problems)
        items = [item for item, p in zip(items, problems) if p is None]
        names = [name for name, p in zip(names, problems) if p is None]
    for name, res in zip(names, sol.predict(items, batch_size=args.batch_size)):
        if args.json:
            described = {"read_as": res["input"]} if "input" in res else {}  # e.g. what a DICOM header said
            print(json.dumps({**res, "input": name, **described}))
        else:
            label = res.get("label") or ",".join(res.get("labels", [])) or "-"
            print(f"{name}\t{label}\t{res['score']:.3f}")
    return 1 if skipped else 0


# --- suite train / evaluate / export ---------------------------------------------------------------
_CONFIG_HELP = {
    "epochs": "training epochs", "batch_size": "batch size", "lr": "learning rate of the head (groups below "
    "get lr x lr_decay^depth with discriminative strategies); try 1e-2 for feature_extraction, 1e-3 otherwise",
    "weight_decay": "AdamW weight decay", "optimizer": "adamw or sgd", "schedule": "cosine, linear, onecycle or constant",
    "warmup": "warm-up as a fraction of all steps", "strategy": "feature_extraction, partial, full, "
    "discriminative, gradual_unfreezing, lp_ft, lora or finbert (discriminative + gradual unfreezing)",
    "augment": "none, light, standard, medical or field (unset: light when the backbone trains; cached "
    "features are never augmented)",
    "monitor": "val_loss or val_accuracy (best checkpoint, early stopping)",
    "patience": "stop after this many epochs without improvement", "class_weights": "inverse-frequency loss weights",
    "balanced_sampler": "sample classes equally", "label_smoothing": "label smoothing", "grad_accum":
    "gradient accumulation steps", "max_grad_norm": "clip gradients to this norm", "mixed_precision":
    "no, fp16 or bf16 (GPU)", "channels_last": "2D conv nets train in channels-last memory layout (faster; "
    "--no-channels-last turns it off)", "seed": "random seed", "num_workers": "DataLoader worker processes",
    "eval_batch_size": "batch size for features and evaluation", "cache_dir": "folder for cached features",
    "adapt": "domain adaptation with --target-data: dann, coral, mmd, reweight, adabn, fda, self_training or entropy",
}


def _add_config_options(p: argparse.ArgumentParser) -> None:
    """One option per TrainConfig field, so the CLI and the Python API never drift apart."""
    import dataclasses

    from suite.core.trainer import TrainConfig

    group = p.add_argument_group("training")
    for f in dataclasses.fields(TrainConfig):
        if f.name in ("strategy_options", "adapt_options", "progress"):
            continue
        flag = "--" + f.name.replace("_", "-")
        default = f.default
        if isinstance(default, bool):  # on by default: --no-NAME turns it off
            group.add_argument(flag, action=argparse.BooleanOptionalAction if default else "store_true",
                               default=default, help=_CONFIG_HELP.get(f.name))
        else:
            kind = {"patience": int, "max_grad_norm": float, "cache_dir": str, "adapt": str,
                    "augment": str}.get(f.name, type(default))
            group.add_argument(flag, type=kind, default=default, help=f"{_CONFIG_HELP.get(f.name, '')} "
                               f"(default: {default})")
    group.add_argument("--strategy-opt", action="append", default=[], metavar="KEY=VALUE",
                       help="strategy option, e.g. n_groups=3, lr_decay=0.8 (repeatable)")
    group.add_argument("--adapt-opt", action="append", default=[], metavar="KEY=VALUE",
                       help="adaptation option, e.g. weight=0.5 (repeatable)")
    group.add_argument("--no-progress", action="store_true", help="no progress bars")


def _config_from_args(args: argparse.Namespace):
    import dataclasses

    from suite.core import SuiteError
    from suite.core.trainer import TrainConfig

    def parse(items: list[str], flag: str) -> dict:
        options = {}
        for item in items:
            key, sep, value = item.partition("=")
            if not sep:
                raise SuiteError(f"{flag} {item!r}: expected KEY=VALUE")
            try:
                options[key] = json.loads(value)
            except ValueError:
                options[key] = value
        return options

    kw = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
          if f.name not in ("strategy_options", "adapt_options", "progress")}
    return TrainConfig(**kw, strategy_options=parse(args.strategy_opt, "--strategy-opt"),
                       adapt_options=parse(args.adapt_opt, "--adapt-opt"), progress=not args.no_progress)


def _data_options(args: argparse.Namespace) -> dict:
    opts = {}
    for key in ("path_col", "label_col", "group_col", "text_col"):
        value = getattr(args, key, None)
        if value:
            opts[key] = value
    return opts


@command("train", "fine-tune a backbone on your data and write a Solution with its evaluation report")
def _train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="class folders, a CSV manifest, a text CSV/JSON, or a .npz")
    p.add_argument("--out", required=True, help="output folder (solution/, report/, train/ checkpoints)")
    p.add_argument("--backbone", help="model spec (default: embedded:efficientnet_lite0 for images, "
                   "embedded:minilm_l6 for text); see `suite models`")
    p.add_argument("--val-data", help="separate validation data (else a split of --data)")
    p.add_argument("--test-data", help="separate test data (else a split of --data)")
    p.add_argument("--val", type=float, default=0.15, help="validation fraction when splitting (default 0.15)")
    p.add_argument("--test", type=float, default=0.15, help="test fraction when splitting (default 0.15)")
    p.add_argument("--path-col", help="CSV column with image paths")
    p.add_argument("--label-col", help="CSV column with labels")
    p.add_argument("--group-col", help="CSV column with group ids (patient, leaf): splits keep groups whole")
    p.add_argument("--text-col", help="column with the text (text CSV/JSON)")
    p.add_argument("--in-chans", type=int, help="input channels (default: 1 when the images are grayscale)")
    p.add_argument("--image-size", type=int, help="train at this square input size instead of the "
                   "backbone's (e.g. 128 for speed on CPU); stored with the solution")
    p.add_argument("--no-pretrained", action="store_true", help="random initial weights")
    p.add_argument("--baseline", choices=["scratch"], help="also train from scratch and report the transfer gain")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    p.add_argument("--target-data", help="unlabelled data of the domain to adapt to (with --adapt METHOD)")
    p.add_argument("--target-eval-data", help="labelled target data, used only to evaluate the adaptation")
    p.add_argument("--head-hidden", type=int, default=0, help="bottleneck width before the classifier "
                   "(features that adaptation aligns; default none)")
    p.add_argument("--name", help="solution name")
    _add_config_options(p)


@_train_args.bind
def _train_run(args: argparse.Namespace) -> int:
    from suite.core.data import load_data
    from suite.core.finetune import finetune

    config = _config_from_args(args)
    data_opts = _data_options(args)
    data = args.data
    if not str(data).endswith(".npz"):  # .npz files keep their official splits: finetune loads them
        data, data_opts = load_data(data, **data_opts), {}
        for warning in data.warnings:  # skipped unreadable files, tiny classes, unlabelled rows
            print(f"warning: {warning}", file=sys.stderr)
    backbone = args.backbone or ("embedded:minilm_l6" if getattr(data, "modality", "") == "text"
                                 else "embedded:efficientnet_lite0")
    result = finetune(data, backbone=backbone, config=config, output_dir=args.out, val_data=args.val_data,
                      test_data=args.test_data, val=args.val, test=args.test, in_chans=args.in_chans,
                      pretrained=not args.no_pretrained, baseline=args.baseline, resume=args.resume,
                      name=args.name, data_options=data_opts, image_size=args.image_size,
                      target_data=args.target_data, target_eval_data=args.target_eval_data,
                      head_hidden=args.head_hidden)
    if result.report:
        m = result.report["metrics"]
        ci = result.report["ci95"]
        print(f"\n{result.report['data']}")
        for key in ("accuracy", "balanced_accuracy", "macro_f1", "auroc", "ece"):
            if m.get(key) is not None:
                lo_hi = ci.get(key) or [None, None]
                rng = f" [{lo_hi[0]:.3f}, {lo_hi[1]:.3f}]" if lo_hi[0] is not None else ""
                print(f"  {key:<18} {m[key]:.4f}{rng}")
        adapt = result.report.get("adaptation", {})
        for row in adapt.get("comparison", {}).get("rows", []):
            print(f"  target accuracy, {row['name']:<12} {row['value']:.4f} "
                  f"[{row['ci95'][0]:.3f}, {row['ci95'][1]:.3f}]")
        for warning in result.report.get("warnings", []):
            print(f"  warning: {warning}")
        print(f"solution: {Path(args.out) / 'solution'}\nreport:   {Path(args.out) / 'report' / 'report.md'}")
    return 0


@command("evaluate", "evaluate a Solution on labelled data and write report.json/.md with plots")
def _evaluate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("solution", help="Solution directory")
    p.add_argument("--data", required=True, help="labelled data (same label names as the solution)")
    p.add_argument("--out", help="report folder (default: print only)")
    p.add_argument("--split", default="test", help="split to use for a .npz file (default test)")
    for key in ("path_col", "label_col", "group_col", "text_col"):
        p.add_argument("--" + key.replace("_", "-"))


@_evaluate_args.bind
def _evaluate_run(args: argparse.Namespace) -> int:
    from suite.core import Solution, SuiteError
    from suite.core.data import load_data
    from suite.core.evaluation import write_report
    from suite.core.finetune import evaluate_solution

    sol = Solution.load(args.solution)
    opts = _data_options(args)
    if str(args.data).endswith(".npz"):
        opts["split"] = args.split
    data = load_data(args.data, classes=sol.labels, **opts)
    if list(data.classes) != sol.labels:
        raise SuiteError(f"{args.data}: classes {data.classes} differ from the solution's {sol.labels}")
    report, probs = evaluate_solution(sol, data)
    print(json.dumps({"data": report["data"], "metrics": report["metrics"], "ci95": report["ci95"],
                      "warnings": report["warnings"]}, indent=2))
    if args.out:
        write_report(report, args.out, data.labels, probs, title=f"{sol.name} on {args.data}")
    return 0


@command("export", "export a Solution to ONNX and check it against PyTorch")
def _export_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("solution", help="Solution directory")
    p.add_argument("--out", required=True, help="output .onnx file")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--atol", type=float, default=1e-4, help="parity tolerance on logits (default 1e-4)")
    p.add_argument("--no-guard", action="store_true",
                   help="leave the input guard out (by default the file also outputs guard_score, above 1 = "
                        "unlike the training data)")


@_export_args.bind
def _export_run(args: argparse.Namespace) -> int:
    from suite.core import Solution
    from suite.core.export import export_onnx

    print(json.dumps(export_onnx(Solution.load(args.solution), args.out, opset=args.opset, atol=args.atol,
                                 guard=not args.no_guard),
                     indent=2))
    return 0


# --- suite app ------------------------------------------------------------------------------------
@command("app", "serve the Streamlit demo app (offline, on the ready-made solutions)")
def _app_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--address", default="localhost")


@_app_args.bind
def _app_run(args: argparse.Namespace) -> int:
    home = Path(__file__).resolve().parent.parent / "apps" / "Home.py"
    if not home.is_file():
        from suite.core import SuiteError

        raise SuiteError(f"{home}: the app is not installed with this copy of suite (run from a source checkout)")
    env = {**os.environ, "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    cmd = [sys.executable, "-m", "streamlit", "run", str(home), "--server.headless", "true",
           "--server.port", str(args.port), "--server.address", args.address]
    return subprocess.call(cmd, env=env)


# Modules that add more commands with the same ``command`` decorator (imported when the parser is built).
COMMAND_MODULES: list[str] = ["suite.cli_explore", "suite.cli_advise"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="suite", description="Ready-made transfer-learning solutions: medical, agriculture, finance, driving.")
    from suite import __version__

    parser.add_argument("--version", action="version", version=f"suite {__version__}")
    import importlib

    for module in COMMAND_MODULES:
        importlib.import_module(module)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_text, add_args, _) in COMMANDS.items():
        add_args(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 0
    from suite.core.errors import SuiteError

    try:
        return COMMANDS[args.command][2](args) or 0
    except SuiteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
