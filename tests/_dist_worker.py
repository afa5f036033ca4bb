"""Run by tests/test_distributed.py under torchrun: each rank trains, then records its parameters.

(BatchNorm running statistics are buffers: DDP broadcasts them from rank 0 before each forward, so
after the last step they differ per rank by design; parameters must be identical.)
"""

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import _photo_crops  # noqa: E402

from suite.core import create_model  # noqa: E402
from suite.core.data import LabeledData  # noqa: E402
from suite.core.trainer import Trainer, TrainConfig, seed_everything  # noqa: E402
from suite.core.weights import fingerprint  # noqa: E402


def main(out: Path) -> None:
    crops = _photo_crops(10, 48, seed=1)
    data = LabeledData(items=[c for cs in crops.values() for c in cs], labels=np.repeat(np.arange(3), 10),
                       classes=list(crops), modality="image", source="photo crops")
    seed_everything(0)
    model = create_model("embedded:efficientnet_lite0", num_classes=3)
    model.preprocess = dataclasses.replace(model.preprocess, input_size=(3, 64, 64))
    initial = fingerprint(dict(model.named_parameters()))
    trainer = Trainer(model, TrainConfig(epochs=2, batch_size=4, lr=1e-2, strategy="partial", augment="none",
                                         progress=False), output_dir=out / "run")
    state = trainer.fit(data)
    rank = trainer.accelerator.process_index
    record = {"rank": rank, "world": trainer.accelerator.num_processes, "initial": initial,
              "final": fingerprint(dict(trainer.model.named_parameters())), "steps": state.step}
    (out / f"rank{rank}.json").write_text(json.dumps(record))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
