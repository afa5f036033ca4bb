"""A Solution: a directory holding a model, its labels and preprocessing, metrics and a model card.

``config.json`` + ``model.safetensors`` + ``README.md`` (+ ``tokenizer/`` for text models), in the
spirit of ``save_pretrained``/``from_pretrained``. Loading needs no pickle and no network. Only the
tensors that differ from the pretrained backbone are stored, so solutions stay small.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch

from .errors import SuiteError
from .hub import create_model
from .model import TransferModel
from .preprocess import Preprocess
from .weights import fingerprint, load_state_dict, save_state_dict

FORMAT = "suite.solution/1"
WEIGHTS_FILE = "model.safetensors"
NOT_FOR = ("Research and demonstration use only.")


def is_solution_dir(path: str | os.PathLike) -> bool:
    """True when ``path`` holds a Solution's ``config.json``."""
    cfg = Path(path) / "config.json"
    if not cfg.is_file():
        return False
    try:
        return str(json.loads(cfg.read_text()).get("format", "")).startswith("suite.solution")
    except (ValueError, OSError):
        return False


def _atomic_write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


class Solution:
    """A trained model with everything needed to use it: ``load``, ``predict``, ``save``."""

    def __init__(self, model: TransferModel, labels: Sequence[str], metrics: dict | None = None,
                 recipe: dict | None = None, name: str = "solution", description: str = "",
                 card: str | None = None, threshold: float = 0.5, extra: dict | None = None):
        if model.num_classes != len(labels):
            raise SuiteError(f"model has {model.num_classes} outputs but {len(labels)} labels were given")
        self.model = model.eval()
        self.labels = list(labels)
        self.metrics = metrics or {}
        self.recipe = recipe or {}
        self.name = name
        self.description = description
        self.card = card
        self.threshold = threshold
        self.extra = extra or {}
        self._transform = None

    @property
    def task(self) -> str:
        return self.model.task

    @property
    def preprocess(self) -> Preprocess:
        return self.model.preprocess

    # --- persistence --------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        return {"format": FORMAT, "name": self.name, "description": self.description,
                "model": self.model.extra_config(), "labels": self.labels, "threshold": self.threshold,
                "preprocess": self.preprocess.to_dict(), "recipe": self.recipe, "metrics": self.metrics,
                "extra": self.extra}

    def save(self, path: str | os.PathLike) -> Path:
        """Write the Solution directory; only tensors differing from the pretrained backbone are stored."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        state = self.model.state_dict()
        stored, base_keys = dict(state), []
        reproducible = self.model.reproducible_keys()
        if reproducible:
            reference = self._reference_model().state_dict()
            base_keys = sorted(k for k in reproducible
                               if k in reference and reference[k].shape == state[k].shape
                               and torch.equal(reference[k], state[k]))
            for k in base_keys:
                del stored[k]
        cfg = self.config()
        cfg["weights"] = {"file": WEIGHTS_FILE, "base": "pretrained" if base_keys else "none",
                          "base_keys": len(base_keys), "stored_keys": len(stored),
                          "base_fingerprint": fingerprint({k: state[k] for k in base_keys}) if base_keys else None}
        if self.preprocess.modality == "text" and self.model.tokenizer is not None:
            tok_dir = path / "tokenizer"
            if tok_dir.exists():
                shutil.rmtree(tok_dir)
            self.model.tokenizer.save_pretrained(str(tok_dir))
            cfg["preprocess"]["tokenizer"] = "tokenizer"
        save_state_dict(stored, path / WEIGHTS_FILE, metadata={"format": FORMAT, "suite.spec": self.model.spec})
        _atomic_write_text(path / "config.json", json.dumps(cfg, indent=2, default=_json_default) + "\n")
        _atomic_write_text(path / "README.md", self.card or self.default_card())
        return path

    def _reference_model(self, pretrained: bool = True) -> TransferModel:
        m = self.model
        in_chans = m.preprocess.in_chans if m.preprocess.modality != "text" else None
        return create_model(m.spec, num_classes=m.num_classes, in_chans=in_chans, pretrained=pretrained,
                            task=m.task, dropout=m.dropout, head_hidden=m.head_hidden)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device = "cpu") -> "Solution":
        """Rebuild a Solution from its directory: no pickle, no network for embedded backbones."""
        path = Path(path)
        if not is_solution_dir(path):
            raise SuiteError(f"{path}: not a Solution directory (no config.json with format {FORMAT!r})")
        cfg = json.loads((path / "config.json").read_text())
        mcfg, wcfg = cfg["model"], cfg["weights"]
        pretrained_base = wcfg.get("base") == "pretrained"
        model = create_model(mcfg["spec"], num_classes=mcfg["num_classes"], in_chans=mcfg.get("in_chans"),
                             pretrained=pretrained_base, task=mcfg["task"], dropout=mcfg.get("dropout", 0.0),
                             head_hidden=mcfg.get("head_hidden", 0))
        stored = load_state_dict(path / wcfg["file"])
        state = model.state_dict()
        unknown = sorted(set(stored) - set(state))
        if unknown:
            raise SuiteError(f"{path}: weights do not fit {mcfg['spec']} (unexpected tensor {unknown[0]})")
        base_keys = sorted(set(state) - set(stored))
        if len(base_keys) != wcfg.get("base_keys", 0):
            raise SuiteError(f"{path}: {len(base_keys)} tensors missing from the weights file, expected "
                             f"{wcfg.get('base_keys', 0)} from the pretrained backbone")
        if base_keys and fingerprint({k: state[k] for k in base_keys}) != wcfg.get("base_fingerprint"):
            raise SuiteError(f"{path}: the pretrained backbone for {mcfg['spec']} differs from the one this "
                             "solution was trained on (a different package version?)")
        model.load_state_dict({**state, **stored})
        pre = Preprocess.from_dict(cfg["preprocess"])
        if pre.modality == "text" and pre.tokenizer == "tokenizer" and (path / "tokenizer").is_dir():
            from transformers import AutoTokenizer

            model.tokenizer = AutoTokenizer.from_pretrained(str(path / "tokenizer"), local_files_only=True)
        model.preprocess = pre
        sol = cls(model.to(device), cfg["labels"], metrics=cfg.get("metrics"), recipe=cfg.get("recipe"),
                  name=cfg.get("name", path.name), description=cfg.get("description", ""),
                  threshold=cfg.get("threshold", 0.5), extra=cfg.get("extra"))
        card = path / "README.md"
        sol.card = card.read_text(encoding="utf-8") if card.is_file() else None
        return sol

    # --- inference ----------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def transform(self, item: Any) -> torch.Tensor:
        """One raw image (path, bytes, PIL image or array) -> model input ``(C, H, W)``."""
        from .io import read_image

        if self._transform is None:
            self._transform = self.preprocess.image_transform()
        return self._transform(read_image(item))

    def encode(self, items: Sequence[Any]) -> torch.Tensor | dict[str, torch.Tensor]:
        """A batch of raw inputs -> model input (an image tensor ``(B, C, H, W)`` or token tensors)."""
        if self.preprocess.modality == "text":
            texts = [_as_text(t) for t in items]
            return dict(self.model.tokenizer(texts, padding=True, truncation=True,
                                             max_length=self.preprocess.max_length, return_tensors="pt"))
        if self.preprocess.modality == "image":
            return torch.stack([self.transform(x) for x in items])
        raise SuiteError(f"{self.name}: {self.preprocess.modality} inputs need the vertical's loader")

    @torch.no_grad()
    def predict_proba(self, items: Iterable[Any], batch_size: int = 32) -> np.ndarray:
        """Class probabilities ``(N, num_classes)``: softmax, or sigmoid for multi-label."""
        items = list(items)
        out = []
        self.model.eval()
        for i in range(0, len(items), batch_size):
            x = self.encode(items[i:i + batch_size])
            from .features import to_device

            x = to_device(x, self.device)
            logits = self.model(x).float()
            out.append((logits.sigmoid() if self.task == "multilabel" else logits.softmax(-1)).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, len(self.labels)), dtype=np.float32)

    def predict(self, inputs: Any, batch_size: int = 32) -> dict | list[dict]:
        """Predictions for one input (a dict) or a list of inputs (a list of dicts).

        Each dict has ``label`` (multi-label: ``labels``), ``score`` and ``probs`` by label.
        """
        single = not isinstance(inputs, (list, tuple))
        probs = self.predict_proba([inputs] if single else inputs, batch_size)
        results = []
        for p in probs:
            row = {"probs": {lab: float(v) for lab, v in zip(self.labels, p)}}
            if self.task == "multilabel":
                row["labels"] = [lab for lab, v in zip(self.labels, p) if v >= self.threshold]
                row["score"] = float(p.max())
            else:
                k = int(p.argmax())
                row["label"], row["score"] = self.labels[k], float(p[k])
            results.append(row)
        return results[0] if single else results

    # --- model card ---------------------------------------------------------------------------
    def default_card(self) -> str:
        lines = [f"# {self.name}", "", self.description or "A suite Solution.", "",
                 "## Model", f"- backbone: `{self.model.spec}`", f"- task: {self.task}",
                 f"- labels: {', '.join(self.labels)}",
                 f"- input: {self.preprocess.modality} {tuple(self.preprocess.input_size)}", ""]
        if self.metrics:
            lines += ["## Metrics", "```json", json.dumps(self.metrics, indent=2, default=_json_default), "```", ""]
        if self.recipe:
            lines += ["## Recipe", "```json", json.dumps(self.recipe, indent=2, default=_json_default), "```", ""]
        lines += ["## Limits", NOT_FOR, ""]
        return "\n".join(lines)


def _as_text(item: Any) -> str:
    if isinstance(item, bytes):
        try:
            return item.decode("utf-8")
        except UnicodeDecodeError:
            return item.decode("latin-1")
    if not isinstance(item, str):
        raise SuiteError(f"text model expects strings, got {type(item).__name__}")
    return item


def _json_default(o: Any):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, (np.ndarray,)):
        return o.tolist()
    if isinstance(o, (set, tuple)):
        return list(o)
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
