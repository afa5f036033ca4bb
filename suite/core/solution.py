"""A Solution: a directory holding a model, its labels and preprocessing, metrics and a model card.

``config.json`` + ``model.safetensors`` + ``README.md`` (+ ``tokenizer/`` for text models), in the
spirit of ``save_pretrained``/``from_pretrained``. Loading needs no pickle and no network. Only the
tensors that differ from the pretrained backbone are stored, so solutions stay small.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import torch

from .errors import CorruptFileError, SuiteError, UnsafeFileError
from .hub import create_model
from .model import TransferModel
from .ood import InputGuard, check_reads
from .preprocess import Preprocess
from .weights import atomic_path, fingerprint, load_state_dict, save_state_dict

FORMAT = "suite.solution/1"
WEIGHTS_FILE = "model.safetensors"
GUARD_FILE = "guard.safetensors"
NOT_FOR = ("Research and demonstration use only.")


def is_solution_dir(path: str | os.PathLike) -> bool:
    """True when ``path`` holds a Solution's ``config.json``."""
    cfg = Path(path) / "config.json"
    if not cfg.is_file():
        return False
    try:
        data = json.loads(cfg.read_text())
    except (ValueError, OSError):
        return False
    return isinstance(data, dict) and str(data.get("format", "")).startswith("suite.solution")


_CONFIG_FIELDS = {"model": dict, "weights": dict, "labels": list, "preprocess": dict}
_MODEL_FIELDS = {"spec": str, "num_classes": int, "task": str}


def _read_config(path: Path) -> dict:
    """A Solution's ``config.json`` after checking the fields loading needs (an edited or hostile
    file gives one clear error, not a KeyError)."""
    where = path / "config.json"
    cfg = json.loads(where.read_text())
    for fields, part, name in ((_CONFIG_FIELDS, cfg, ""), (_MODEL_FIELDS, cfg.get("model"), "model.")):
        for key, kind in fields.items():
            if not isinstance(part, dict) or not isinstance(part.get(key), kind):
                raise CorruptFileError(where, f"field {name}{key!r} is missing or not a {kind.__name__}")
    if len(cfg["labels"]) != cfg["model"]["num_classes"] and cfg["model"]["task"] != "segmentation":
        raise CorruptFileError(where, f"{len(cfg['labels'])} labels for {cfg['model']['num_classes']} outputs")
    return cfg


def _weights_path(path: Path, name) -> Path:
    """The weights file named in the config: a ``.safetensors`` file inside the Solution folder (never a
    pickle-based format, never a path outside)."""
    if not isinstance(name, str) or Path(name).name != name or not name.endswith(".safetensors"):
        raise UnsafeFileError(f"{path / 'config.json'}: weights file {name!r} refused: a Solution's weights are "
                              "a .safetensors file inside its folder")
    return path / name


def _atomic_write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")


class Solution:
    """A trained model with everything needed to use it: ``load``, ``predict``, ``save``."""

    def __init__(self, model: TransferModel, labels: Sequence[str], metrics: dict | None = None,
                 recipe: dict | None = None, name: str = "solution", description: str = "",
                 card: str | None = None, threshold: float = 0.5, extra: dict | None = None,
                 guard: InputGuard | None = None):
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
        self.guard = guard  # flags inputs unlike the training data (see fit_guard)
        self._transform = None
        self._pretrained = None  # the untouched pretrained backbone, built when a guard reads it

    @property
    def task(self) -> str:
        return self.model.task

    @property
    def preprocess(self) -> Preprocess:
        return self.model.preprocess

    # --- persistence --------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        kind = {} if type(self) is Solution else {"kind": f"{type(self).__module__}.{type(self).__qualname__}"}
        return {"format": FORMAT, **kind, "name": self.name, "description": self.description,
                "model": self.model.extra_config(), "labels": self.labels, "threshold": self.threshold,
                "preprocess": self.preprocess.to_dict(), "recipe": self.recipe, "metrics": self.metrics,
                "extra": self.extra}

    def save(self, path: str | os.PathLike, storage_dtype: str = "float32", low_rank: int | None = None) -> Path:
        """Write the Solution directory; only tensors differing from the pretrained backbone are stored.

        ``storage_dtype="float16"`` halves the file by storing those tensors as float16; loading casts
        them back to the model's float32 (check the metrics after, as the shipped solutions do).
        ``low_rank=r`` stores a changed matrix as two rank-``r`` factors of its change when that change
        has rank ``r`` or less (what merged LoRA adapters leave): pretrained + A @ B on loading.
        """
        if storage_dtype not in ("float32", "float16"):
            raise SuiteError(f"storage_dtype must be float32 or float16, got {storage_dtype!r}")
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        # on the CPU, where the reference model is built (a model trained on a GPU stays there)
        state = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
        stored, base_keys = dict(state), []
        reproducible = self.model.reproducible_keys()
        if reproducible:
            reference = self._reference_model().state_dict()
            base_keys = sorted(k for k in reproducible
                               if k in reference and reference[k].shape == state[k].shape
                               and torch.equal(reference[k], state[k]))
            for k in base_keys:
                del stored[k]
        factored = _low_rank_factors(state, reference, stored, low_rank) if reproducible and low_rank else {}
        for k, (a, b) in factored.items():
            del stored[k]
            stored[k + LOW_RANK_A], stored[k + LOW_RANK_B] = a, b
        base = {k: state[k] for k in base_keys} | {k: reference[k] for k in factored}
        cfg = self.config()
        cfg["weights"] = {"file": WEIGHTS_FILE, "base": "pretrained" if base else "none",
                          "base_keys": len(base_keys), "stored_keys": len(stored) - len(factored),
                          "base_fingerprint": fingerprint(base) if base else None}
        if factored:
            cfg["weights"]["low_rank"] = {"rank": low_rank, "keys": sorted(factored)}
        if self.preprocess.modality == "text" and self.model.tokenizer is not None:
            tok_dir = path / "tokenizer"
            if tok_dir.exists():
                shutil.rmtree(tok_dir)
            self.model.tokenizer.save_pretrained(str(tok_dir))
            cfg["preprocess"]["tokenizer"] = "tokenizer"
        if storage_dtype == "float16":
            stored = {k: v.half() if v.is_floating_point() else v for k, v in stored.items()}
        cfg["weights"]["storage_dtype"] = storage_dtype
        save_state_dict(stored, path / WEIGHTS_FILE, metadata={"format": FORMAT, "suite.spec": self.model.spec,
                                                               "suite.storage_dtype": storage_dtype})
        if self.guard is not None:
            save_state_dict(self.guard.state_dict(), path / GUARD_FILE, metadata={"format": FORMAT})
            cfg["guard"] = {"file": GUARD_FILE, "quantile": self.guard.quantile, "reads": self.guard.reads,
                            "features": int(self.guard.mean.numel()), "calibrated_on": self.guard.calibrated_on}
        elif (path / GUARD_FILE).exists():
            (path / GUARD_FILE).unlink()
        _atomic_write_text(path / "config.json", json.dumps(cfg, indent=2, default=_json_default) + "\n")
        _atomic_write_text(path / "README.md", self.card or self.default_card())
        return path

    def _reference_model(self, pretrained: bool = True) -> TransferModel:
        m = self.model
        if m.task == "segmentation":
            from .segmentation import segmentation_model_from_config

            return segmentation_model_from_config(m.extra_config(), pretrained=pretrained)
        in_chans = m.preprocess.in_chans if m.preprocess.modality != "text" else None
        return create_model(m.spec, num_classes=m.num_classes, in_chans=in_chans, pretrained=pretrained,
                            task=m.task, dropout=m.dropout, head_hidden=m.head_hidden)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device = "cpu") -> "Solution":
        """Rebuild a Solution from its directory: no pickle, no network for embedded backbones.

        A damaged or edited bundle raises one SuiteError naming it, never a bare KeyError or TypeError.
        """
        try:
            return cls._load(Path(path), device)
        except SuiteError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, RuntimeError, OverflowError) as exc:
            detail = (str(exc).splitlines() or [""])[0][:200]
            raise CorruptFileError(path, f"config.json and the weights do not describe a model that can be "
                                         f"rebuilt ({type(exc).__name__}: {detail})") from None

    @classmethod
    def _load(cls, path: Path, device) -> "Solution":
        if not is_solution_dir(path):
            raise SuiteError(f"{path}: not a Solution directory (no config.json with format {FORMAT!r})")
        cfg = _read_config(path)
        cls = _solution_class(cls, cfg.get("kind"), path)
        mcfg, wcfg = cfg["model"], cfg["weights"]
        pretrained_base = wcfg.get("base") == "pretrained"
        if mcfg["task"] == "segmentation":
            from .segmentation import segmentation_model_from_config

            model = segmentation_model_from_config(mcfg, pretrained=pretrained_base)
        else:
            model = _classifier_from_config(mcfg, pretrained_base)
        stored = load_state_dict(_weights_path(path, wcfg.get("file")))
        state = model.state_dict()
        factored = list((wcfg.get("low_rank") or {}).get("keys", []))
        for k in factored:  # pretrained + A @ B
            a, b = stored.pop(k + LOW_RANK_A), stored.pop(k + LOW_RANK_B)
            stored[k] = (state[k].double() + a.double() @ b.double()).to(state[k].dtype)
        unknown = sorted(set(stored) - set(state))
        if unknown:
            raise SuiteError(f"{path}: weights do not fit {mcfg['spec']} (unexpected tensor {unknown[0]})")
        base_keys = sorted(set(state) - set(stored))
        if len(base_keys) != wcfg.get("base_keys", 0):
            raise SuiteError(f"{path}: {len(base_keys)} tensors missing from the weights file, expected "
                             f"{wcfg.get('base_keys', 0)} from the pretrained backbone")
        base = base_keys + factored
        if base and fingerprint({k: state[k] for k in base}) != wcfg.get("base_fingerprint"):
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
        if cfg.get("guard"):
            guard_file = cfg["guard"].get("file") if isinstance(cfg["guard"], dict) else None
            sol.guard = InputGuard.from_state_dict(load_state_dict(_weights_path(path, guard_file)))
            sol.guard.reads = check_reads(cfg["guard"].get("reads", "model"))
        card = path / "README.md"
        sol.card = card.read_text(encoding="utf-8") if card.is_file() else None
        return sol

    # --- inference ----------------------------------------------------------------------------
    @property
    def input_suffixes(self) -> tuple[str, ...]:
        """File suffixes ``suite predict`` collects from a folder for this Solution."""
        from .io import IMAGE_SUFFIXES

        return IMAGE_SUFFIXES

    def check_input(self, item: Any, name: str | None = None) -> str | None:
        """Why ``item`` cannot be read as this Solution's input, or ``None`` (texts always can)."""
        if self.preprocess.modality != "image":
            return None
        from .io import check_image

        return check_image(item, name)

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
        if self.preprocess.modality == "volume" and all(isinstance(x, np.ndarray) for x in items):
            from .features import eval_transform

            volume = eval_transform(self.model)  # prepared arrays; NIfTI files need the vertical's loader
            return torch.stack([volume(x) for x in items])
        raise SuiteError(f"{self.name}: {self.preprocess.modality} inputs need the vertical's loader")

    @torch.no_grad()
    def forward_items(self, items: Iterable[Any], batch_size: int = 32,
                      guard: bool = True) -> tuple[np.ndarray, torch.Tensor]:
        """Probabilities ``(N, num_classes)`` and the features ``(N, D)`` the input guard reads (the
        backbone's own, unless the guard reads the pretrained backbone) of raw inputs. ``guard=False``
        returns the backbone's own features, without the extra pass such a guard needs."""
        items = list(items)
        probs, feats = [], []
        self.model.eval()
        for x in self.encoded_batches(items, batch_size):
            f = self.model.forward_features(x)
            logits = self.model.forward_head(f).float()
            probs.append((logits.sigmoid() if self.task == "multilabel" else logits.softmax(-1)).cpu().numpy())
            feats.append((self.guard_features(x, f) if guard else f).float().cpu())
        if not probs:
            return np.zeros((0, len(self.labels)), dtype=np.float32), torch.zeros(0, self.model.num_features)
        return np.concatenate(probs), torch.cat(feats)

    def encoded_batches(self, items: Sequence[Any], batch_size: int) -> Iterator:
        """The model input of each ``batch_size`` slice of raw ``items``, on the model's device."""
        from .features import to_device

        for i in range(0, len(items), batch_size):
            yield to_device(self.encode(items[i:i + batch_size]), self.device)

    def predict_proba(self, items: Iterable[Any], batch_size: int = 32) -> np.ndarray:
        """Class probabilities ``(N, num_classes)``: softmax, or sigmoid for multi-label."""
        return self.forward_items(items, batch_size, guard=False)[0]

    def fit_guard(self, data, batch_size: int = 64, max_items: int = 2000, quantile: float = 0.99,
                  seed: int = 0, calibration=None, reads: str = "model") -> InputGuard:
        """Fit the input guard on training data (a LabeledData or a list of raw inputs); returns it.

        ``calibration`` (same kinds): items the network never trained on, such as a validation split;
        the threshold is set on them (see :class:`InputGuard`), else on held-out training items.
        ``reads="pretrained"`` models the features of the untouched pretrained backbone instead of the
        fine-tuned one: no item needs holding out of training, at one more forward pass per input.
        """
        model = self.guard_model(check_reads(reads))
        feats = self._guard_features(model, data, batch_size, max_items, seed)
        calib = None if calibration is None else self._guard_features(model, calibration, batch_size, max_items, seed)
        self.guard = InputGuard.fit(feats, quantile=quantile, seed=seed, calibration=calib)
        self.guard.reads = reads
        return self.guard

    def guard_features(self, x, features: torch.Tensor) -> torch.Tensor:
        """The features the input guard reads for the encoded batch ``x`` whose backbone features are ``features``."""
        if self.guard is None or self.guard.reads == "model":
            return features
        return self.guard_model(self.guard.reads).forward_features(x)

    def guard_model(self, reads: str) -> TransferModel:
        """The network whose features a guard that ``reads`` models: this Solution's model, or its
        backbone with the untouched pretrained weights (built once)."""
        if reads == "model":
            return self.model
        if self._pretrained is None:
            self._pretrained = self._reference_model(pretrained=True).requires_grad_(False).eval()
        self._pretrained.preprocess = self.preprocess  # the same inputs as the model, even after a change
        return self._pretrained.to(self.device)

    def _guard_features(self, model: TransferModel, data, batch_size: int, max_items: int, seed: int) -> torch.Tensor:
        from .data import LabeledData
        from .features import extract_features

        if isinstance(data, LabeledData):
            if len(data) > max_items:
                keep = np.random.default_rng(seed).choice(len(data), max_items, replace=False)
                data = data.subset(np.sort(keep))
            return extract_features(model, data, batch_size, progress=False)
        items, model = list(data)[:max_items], model.eval()
        with torch.no_grad():
            return torch.cat([model.forward_features(x).float().cpu() for x in self.encoded_batches(items, batch_size)]
                             or [torch.zeros(0, model.num_features)])

    def ood_scores(self, items: Iterable[Any], batch_size: int = 32) -> np.ndarray:
        """Guard scores ``(N,)`` (above 1: unlike the training data); NaN when there is no guard."""
        feats = self.forward_items(items, batch_size)[1]
        if self.guard is None:
            return np.full(len(feats), np.nan, dtype=np.float32)
        return self.guard.score(feats)

    def predict(self, inputs: Any, batch_size: int = 32, tta: bool | Sequence[str] | None = None) -> dict | list[dict]:
        """Predictions for one input (a dict) or a list of inputs (a list of dicts).

        Each dict has ``label`` (multi-label: ``labels``), ``score`` and ``probs`` by label; with an
        input guard also ``ood`` (True when the input is unlike the training data) and ``ood_score``.
        ``tta=True`` (or a list of view names, see ``suite.core.tta``) averages over augmented views.
        """
        if self.task == "segmentation":  # masks, confidence and pixel shares per image
            from .segmentation import predict_segmentation

            return predict_segmentation(self, inputs, batch_size=min(batch_size, 8))
        single = not isinstance(inputs, (list, tuple))
        items = [inputs] if single else inputs
        if tta:
            from .tta import DEFAULT_VIEWS, tta_forward

            views = list(DEFAULT_VIEWS if tta is True else tta)
            probs, feats = tta_forward(self, items, views, batch_size)
        else:
            probs, feats = self.forward_items(items, batch_size)
        scores = self.guard.score(feats) if self.guard is not None else [None] * len(probs)
        results = []
        for p, ood in zip(probs, scores):
            row = {"probs": {lab: float(v) for lab, v in zip(self.labels, p)}}
            if ood is not None:
                row["ood_score"], row["ood"] = float(ood), bool(ood > 1.0)
            if tta:
                row["tta_views"] = views
            if self.task == "multilabel":
                row["labels"] = [lab for lab, v in zip(self.labels, p) if v >= self.threshold]
                row["score"] = float(p.max())
            else:
                k = self._decide(p)
                row["label"], row["score"] = self.labels[k], float(p[k])
            results.append(row)
        return results[0] if single else results

    def _decide(self, p: np.ndarray) -> int:
        """The predicted class: binary tasks compare P(second label) with the stored threshold."""
        if self.task == "binary" and len(p) == 2:
            return int(p[1] >= self.threshold)
        return int(p.argmax())

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


LOW_RANK_A, LOW_RANK_B = ".low_rank_a", ".low_rank_b"  # suffixes of the two factors of a stored change
LOW_RANK_TOLERANCE = 1e-4  # relative Frobenius error up to which a change counts as low-rank


def _low_rank_factors(state: dict, reference: dict, stored: dict, rank: int) -> dict:
    """``{key: (A, B)}`` for stored matrices whose change from ``reference`` is ``A @ B`` with inner size
    ``rank`` (to ``LOW_RANK_TOLERANCE``), and only where the factors are smaller than the matrix."""
    found = {}
    for k, value in stored.items():
        ref = reference.get(k)
        if ref is None or value.ndim != 2 or ref.shape != value.shape or not value.is_floating_point():
            continue
        if rank * sum(value.shape) >= value.numel():
            continue
        delta = value.double() - ref.double()
        u, sv, vh = torch.linalg.svd(delta, full_matrices=False)
        a, b = u[:, :rank] * sv[:rank], vh[:rank]
        norm = float(torch.linalg.norm(delta))
        if norm == 0 or float(torch.linalg.norm(delta - a @ b)) <= LOW_RANK_TOLERANCE * norm:
            found[k] = (a.to(value.dtype).contiguous(), b.to(value.dtype).contiguous())
    return found


def _classifier_from_config(mcfg: dict, pretrained: bool):
    """The (untrained) classifier a Solution's ``model`` config describes: one network, or an ensemble of
    ``members`` networks of one spec (see ``suite.core.ensemble``)."""
    def build():
        return create_model(mcfg["spec"], num_classes=mcfg["num_classes"], in_chans=mcfg.get("in_chans"),
                            pretrained=pretrained, task=mcfg["task"], dropout=mcfg.get("dropout", 0.0),
                            head_hidden=mcfg.get("head_hidden", 0))

    members = mcfg.get("members")
    if members is None:
        return build()
    if not isinstance(members, int) or not 2 <= members <= MAX_MEMBERS:
        raise SuiteError(f"model.members must be a whole number from 2 to {MAX_MEMBERS}, got {members!r}")
    from .ensemble import EnsembleModel

    return EnsembleModel([build() for _ in range(members)])


MAX_MEMBERS = 16  # networks in one ensemble Solution (a bound on what an edited config can make loading build)


def _solution_class(cls: type, kind: str | None, path: Path) -> type:
    """The Solution subclass a bundle was saved from (``kind`` in config.json), when loaded through a base class.

    Only classes inside the ``suite`` package are imported, and only subclasses of ``cls``; anything else
    is refused, so a config file cannot make loading import arbitrary code.
    """
    if not kind or kind == f"{cls.__module__}.{cls.__qualname__}":
        return cls
    module_name, _, class_name = str(kind).rpartition(".")
    if not module_name.startswith("suite.") or not class_name.isidentifier():
        raise SuiteError(f"{path}: config.json names an unknown solution kind {kind!r}")
    import importlib

    try:
        found = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError):
        raise SuiteError(f"{path}: config.json names an unknown solution kind {kind!r}") from None
    if not (isinstance(found, type) and issubclass(found, Solution)):
        raise SuiteError(f"{path}: config.json names {kind!r}, which is not a Solution class")
    return found if issubclass(found, cls) else cls
