"""Scoring throughput of the shipped finance solution: sentences per second on this CPU.

    python benchmarks/finance_throughput.py
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import DATA, publish, set_threads  # noqa: E402

PHRASEBANK = DATA / "finance" / "financial_phrasebank"


def sentences(n: int) -> list[str]:
    """PhraseBank sentences when the data is present, else a repeated news-like sentence."""
    if PHRASEBANK.exists():
        from suite.finance import load_phrasebank

        items = load_phrasebank(PHRASEBANK, "50").items
        return [items[i % len(items)] for i in range(n)]
    return ["Operating profit rose to EUR 13.1 mn from EUR 8.7 mn in the corresponding period in 2007."] * n


def measure(solution, texts: list[str], batch_size: int, what: str) -> float:
    from suite.finance import score_document, score_texts, token_attributions

    start = time.perf_counter()
    if what == "score":
        score_texts(solution, texts, batch_size=batch_size)
    elif what == "document":
        score_document(solution, " ".join(texts), batch_size=batch_size)
    else:
        for t in texts:
            token_attributions(solution, t)
    return len(texts) / (time.perf_counter() - start)


def main() -> None:
    from suite.finance import load_solution

    rows, raw = [], []
    solution = load_solution()
    for threads in (1, 2):
        machine = set_threads(threads)
        for what, batch, n in [("score", 1, 32), ("score", 32, 256), ("score", 64, 256), ("document", 64, 128),
                               ("attribution (IG, 32 steps)", 1, 8)]:
            texts = sentences(n)
            measure(solution, texts[:8], batch, what)  # warm-up
            rate = measure(solution, texts, batch, what)
            rows.append(f"| {what} | {batch} | {threads} | {rate:.1f} |")
            raw.append({"what": what, "batch_size": batch, "threads": threads, "sentences_per_second": rate,
                        "n": n})
    md = ("Scoring throughput of `suite/finance/solutions/phrasebank_minilm` (MiniLM-L6, max length 64, "
          f"PhraseBank sentences), {machine.split(', ', 1)[0]}, {os.cpu_count()} CPUs; the machine was shared "
          "with other jobs, so these are lower bounds.\n\n| what | batch | threads | sentences / s |\n"
          "|---|---|---|---|\n" + "\n".join(rows) + "\n")
    publish("finance_throughput", md, {"rows": raw, "machine": machine + " (shared)"})


if __name__ == "__main__":
    main()
