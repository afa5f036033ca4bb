"""``suite advise``: which backbone and which strategy for a data set, measured, with a budgeted search."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from suite.cli import command


@command("advise", "recommend a backbone and a fine-tuning strategy for a data set (measured; optional "
         "budgeted search that trains the winner)")
def _advise_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="labelled data: class folders, a CSV/JSON, a .txt of "
                   "text@label lines (with --label-sep), or a .npz")
    p.add_argument("--task", choices=["auto", "multiclass", "binary", "multilabel"], default="auto",
                   help="expected task; an error when the data says otherwise (default auto)")
    p.add_argument("--budget", type=float, help="minutes in all for the measurements, a short search on a "
                   "subset and training the winner into --out; without it nothing is trained")
    p.add_argument("--target", help="unlabelled data of the domain the model will be used on (adaptation advice)")
    p.add_argument("--backbone", action="append", help="candidate model spec; repeat to compare (default: the "
                   "embedded backbone for the data)")
    p.add_argument("--out", default="advice", help="output folder: advice.md, advice.json, and the trained "
                   "winner (default: advice)")
    p.add_argument("--image-size", type=int, help="working input size (default: the backbone's, or about 2x "
                   "small source images)")
    p.add_argument("--label-sep", help="a .txt line ends with SEP + label (e.g. @ for Financial PhraseBank)")
    p.add_argument("--text-col", help="column holding the text (or image path) in a CSV/JSON")
    p.add_argument("--max-items", type=int, default=400, help="items the measurements use (default 400)")
    p.add_argument("--search-items", type=int, default=300, help="items the search uses (default 300)")
    p.add_argument("--no-train", action="store_true", help="search only; do not train the winner")
    p.add_argument("--cache-dir", help="feature cache (default: $SUITE_CACHE_DIR or ~/.cache/suite/features)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print the advice as JSON instead of markdown")


@_advise_args.bind
def _advise_run(args: argparse.Namespace) -> int:
    from suite.core.advisor import advise

    out = Path(args.out)

    def progress(message: str, fraction: float) -> None:
        if not args.json:
            print(f"[{fraction:4.0%}] {message}", flush=True)

    advice = advise(args.data, backbones=args.backbone, task=args.task, budget_minutes=args.budget,
                    target=args.target, image_size=args.image_size, cache_dir=args.cache_dir,
                    output_dir=out / "trained" if args.budget and not args.no_train else None,
                    train_winner=not args.no_train, max_items=args.max_items, search_items=args.search_items,
                    seed=args.seed, label_sep=args.label_sep, text_col=args.text_col, progress=progress)
    files = advice.write(out)
    print(json.dumps(advice.to_dict(), indent=2) if args.json else advice.to_markdown())
    if not args.json:
        print("\n".join(f"{name}: {path}" for name, path in files.items()))
    return 0
