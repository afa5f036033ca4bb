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
@command("predict", "predict with a Solution on files, a folder or a CSV of paths")
def _predict_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("solution", help="Solution directory")
    p.add_argument("inputs", nargs="+", help="image files, folders, or text (with --text)")
    p.add_argument("--text", action="store_true", help="treat inputs as texts, not paths")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--json", action="store_true", help="print one JSON object per input")


@_predict_args.bind
def _predict_run(args: argparse.Namespace) -> int:
    from suite.core import Solution
    from suite.core.io import IMAGE_SUFFIXES

    sol = Solution.load(args.solution)
    if args.text:
        items, names = list(args.inputs), list(args.inputs)
    else:
        names = []
        for inp in args.inputs:
            path = Path(inp)
            if path.is_dir():
                names += sorted(str(f) for f in path.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)
            else:
                names.append(inp)
        items = names
    for name, res in zip(names, sol.predict(items, batch_size=args.batch_size)):
        if args.json:
            print(json.dumps({"input": name, **res}))
        else:
            label = res.get("label") or ",".join(res.get("labels", [])) or "-"
            print(f"{name}\t{label}\t{res['score']:.3f}")
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="suite", description="Ready-made transfer-learning solutions: medical, agriculture, finance, driving.")
    from suite import __version__

    parser.add_argument("--version", action="version", version=f"suite {__version__}")
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
