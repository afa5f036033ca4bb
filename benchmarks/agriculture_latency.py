"""What one leaf photo costs with each shipped tomato solution: the one network and the ensemble.

For one never-seen 288 px test photo (the app's path), median wall time over ``--repeats`` calls of:
the diagnosis the app shows (``diagnose``: prediction, input guard, leaf-colour check), the
prediction alone (``predict_proba``), Grad-CAM (``explain_image``), and the peak resident memory
after loading each solution. Run on an otherwise idle machine; the table names the threads.

    .venv/bin/python benchmarks/agriculture_latency.py

Writes benchmarks/results/agriculture_latency.md and .json.
"""

from __future__ import annotations

from _common import REPO, TOMATO, publish, require, set_threads

import argparse
import resource
import time

SOLUTIONS = {"tomato (one network)": REPO / "suite/agriculture/solutions/tomato",
             "tomato_ensemble (three networks)": REPO / "suite/agriculture/solutions/tomato_ensemble"}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=20)
    a = p.parse_args(argv)
    machine = set_threads(a.threads)
    from suite.agriculture.data import load_leaves
    from suite.agriculture.diagnose import diagnose, load_tomato
    from suite.agriculture.train import leaf_splits
    from suite.core.explain import explain_image
    from suite.core.export import median_ms

    data = load_leaves(str(require(TOMATO)))
    photo = data.load(int(leaf_splits(data, seed=0)["test"][0]))
    rows, raw = [], {}
    for name, path in SOLUTIONS.items():
        started = time.perf_counter()
        solution = load_tomato(path)
        loading = time.perf_counter() - started
        figures = {"load_s": round(loading, 2),
                   "diagnose_ms": round(median_ms(lambda: diagnose(solution, photo), a.repeats), 1),
                   "predict_proba_ms": round(median_ms(lambda: solution.predict_proba([photo]), a.repeats), 1),
                   "gradcam_ms": round(median_ms(lambda: explain_image(solution, photo), max(3, a.repeats // 4)), 1),
                   "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 0)}
        raw[name] = figures
        rows.append(f"| {name} | {figures['load_s']:.1f} | {figures['diagnose_ms']:.0f} | "
                    f"{figures['predict_proba_ms']:.0f} | {figures['gradcam_ms']:.0f} | {figures['peak_rss_mb']:.0f} |")
    text = "\n".join([f"One 288 px tomato test photo; medians over {a.repeats} calls (Grad-CAM: "
                      f"{max(3, a.repeats // 4)}); {machine}. Peak memory is the process's so far, so the second "
                      "row includes the first solution; the first row's loading time includes the first model build.", "",
                      "| solution | load (s) | diagnosis with guard (ms) | prediction only (ms) | Grad-CAM (ms) | "
                      "peak memory (MB) |", "|---|---|---|---|---|---|", *rows])
    publish("agriculture_latency", text, {"machine": machine, "repeats": a.repeats, "solutions": raw})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
