"""How often the shipped finance solution's input guard flags PhraseBank test sentences and off-topic texts.

    python benchmarks/finance_guard.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import DATA, publish, require  # noqa: E402

OFF_TOPIC = [
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit.", "asdf qwer zxcv 1234 !!!",
    "I love my cat and we play in the garden.", "The recipe needs two eggs and flour.",
    "Der Umsatz stieg um 10 Prozent.", "The striker scored twice in the second half.",
    "Mix the flour with butter and bake for 20 minutes.", "My favourite colour is blue.",
    "The patient was admitted with chest pain.", "def main(): return 0", "Il fait beau aujourd hui.",
    "Photosynthesis converts light into chemical energy.",
]


def main(n_test: int = 300) -> None:
    from suite.finance import load_phrasebank, load_solution, phrasebank_split

    solution = load_solution()
    test = phrasebank_split(load_phrasebank(require(DATA / "finance" / "financial_phrasebank"), "50"))["test"]
    in_domain = solution.ood_scores(test.items[:n_test])
    off = solution.ood_scores(OFF_TOPIC)
    rows = [f"| PhraseBank 50Agree test sentences (first {n_test}) | {n_test} | {np.median(in_domain):.2f} | "
            f"{(in_domain > 1).mean():.1%} |",
            f"| off-topic texts (code, other languages, cooking, sports, medicine, noise) | {len(OFF_TOPIC)} | "
            f"{np.median(off):.2f} | {(off > 1).mean():.1%} |"]
    md = ("Input guard of `suite/finance/solutions/phrasebank_minilm` (score > 1 = flagged as unlike the "
          "training sentences).\n\n| texts | n | median score | flagged |\n|---|---|---|---|\n"
          + "\n".join(rows) + "\n")
    publish("finance_guard", md, {"in_domain": in_domain.tolist(), "off_topic": dict(zip(OFF_TOPIC, off.tolist()))})


if __name__ == "__main__":
    main()
