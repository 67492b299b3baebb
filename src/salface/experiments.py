"""The papers' experiments as commands: ``salface experiment <name>``.

Every experiment is a list of training runs plus an analysis:

* a run is described by a :class:`RunSpec` (cache, tasks, recipe, backbone, saliency, ratio, seed,
  epochs, subset sizes); its folder under ``runs_dir`` is named by the spec and a hash of it, so
  an identical run needed by two experiments is trained once (e.g. MobileNetV2 + ML-Net at r = 0.3
  on gender, seed 0, serves the ratio sweep, the saliency-source and the backbone experiments);
* a finished run (``eval_test.json`` present) is skipped, an interrupted one is resumed from its
  last epoch (:func:`salface.train.train` with ``resume=True``): every command is resumable;
* each run is evaluated once on the **same** test images (subsets are drawn with a fixed seed 0,
  independent of the run's seed), and its per-image predictions are kept
  (``test_predictions.npz``) for the paired tests of :mod:`salface.stats`;
* results go to ``<out_dir>/<experiment>/``: ``result.json``, ``README.md`` (tables, the papers'
  numbers beside ours marked *different data*, command, commit, machine, date, wall time) and
  PNG figures, and the experiment's block in ``<out_dir>/README.md`` is refreshed.

Subsets: ``train_limit`` / ``val_limit`` / ``test_limit`` draw that many samples of each split
(seed 0, sorted) from the crop cache; ``None`` keeps the whole split. The cached crops (and
saliency maps) of a subset are read into memory once per run.

Device: ``"auto"`` picks CUDA when torch sees it, else the CPU.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .cache import CropCache, open_crop_cache
from .labels import labels_for
from .utils import command_line, file_lock, resolve_device  # noqa: F401 (re-exported)

EXPERIMENTS: dict[str, str] = {
    "saliency-onoff": "With and without saliency, same recipe and split, several seeds, paired tests",
    "ratio-sweep": "Reweighted ratio r from 0 to 1 (SAF-BAGE Figure 3)",
    "saliency-source": "ML-Net against spectral residual, frequency-tuned, centre bias and none",
    "backbones": "MobileNetV2, GilNet, AlexNet (+ GAP variant, VGG-16 when its weights are present)",
    "cam": "Class activation maps: share of CAM mass on eyes, nose and mouth against uniform",
    "heads": "One network with age and gender heads against one network per task (UTKFace)",
    "fairness": "Accuracy per UTKFace race, gender and age group; expression per class",
    "adience": "Adience five-fold, subject-exclusive protocol (SAF-BAGE Tables 2-4)",
    "affectnet": "AffectNet with SAF-BAGE's balanced 3,500-image test (Tables 5-6)",
}

# The papers' numbers (SAF-BAGE unless marked), for the tables. Their data: Adience / AffectNet.
PAPER = {
    "saliency-onoff": {
        "age": {"without": "52.2 ± 3.9 %", "with": "62.11 ± 3.2 %", "source": "SAF-BAGE Table 2, Adience 5-fold, AlexNet"},
        "gender": {"without": "83.4 ± 1.6 %", "with": "91.8 ± 1.2 %", "source": "SAF-BAGE Table 3, Adience 5-fold, AlexNet"},
        "expression": {"without": "59.2 %", "with": "67.65 %", "source": "SAF-BAGE Table 6, AffectNet balanced test, AlexNet"},
    },
    "backbones": {
        "alexnet": "91.8 ± 1.2 % (ImageNet, fc6–fc8 fine-tuned)",
        "vgg16": "≈ 93.4 % (\"about 1.6 % better than AlexNet\"; only the last fc layer fine-tuned)",
        "gilnet": "89.8 ± 1.3 % (from scratch)",
        "source": "SAF-BAGE Section 4.3, Adience gender, with saliency (r = 0.3)",
    },
    "ratio-sweep": ("SAF-BAGE Figure 3 (Adience gender, AlexNet): r = 0.9 converges fastest in training "
                    "loss but has the worst validation accuracy; r = 0.3 is best. The figure gives no "
                    "numbers."),
    "adience-without": {"age": "52.2 ± 3.9 % (SAF-BAGE Table 2, without saliency)",
                        "gender": "83.4 ± 1.6 % (SAF-BAGE Table 3, without saliency)"},
    "affectnet-without": {"expression": "59.2 % (SAF-BAGE Table 6, without saliency)"},
    "adience": {"age": "62.11 ± 3.2 % (SAF-BAGE Table 2); VEGAC 60.8 %",
                "gender": "91.8 ± 1.2 % (SAF-BAGE Table 3); VEGAC 88.9 %",
                "age_confusion_diagonal": {"0-2": 92.1, "4-6": 70.2, "8-13": 52.8, "15-20": 36.3,
                                           "25-32": 88.4, "38-43": 29.2, "48-53": 47.8, "60+": 80.1}},
    "affectnet": {"expression": "67.65 % with saliency, 59.2 % without (SAF-BAGE Table 6); VEGAC 72.2 %",
                  "per_class": {"neutral": 62.4, "happy": 76.4, "sad": 64.4, "surprise": 73.0,
                                "fear": 68.4, "disgust": 66.2, "anger": 62.8}},
}

DIFFERENT_DATA = "**different data**: the papers used Adience / AffectNet with AlexNet at 227 px"


# ------------------------------------------------------------------------------------ settings

@dataclass
class Settings:
    """Where things go and how big the runs are (the CLI fills this from its options)."""

    runs_dir: Path = Path("runs/experiments")
    out_dir: Path = Path("docs/experiments")
    utk_cache: Path = Path("cache/crops/utkface-96-rgb")
    fer_cache: Path = Path("cache/crops/ferplus-96-gray")
    cache_dir: Path = Path("cache/crops")  # where the Adience / AffectNet protocol caches are built
    seeds: tuple[int, ...] = (0, 1, 2)
    epochs: int | None = None          # None: the experiment's default for the dataset
    train_limit: int | None = -1       # -1: the experiment's default; None: the whole split
    val_limit: int | None = -1
    test_limit: int | None = -1
    batch_size: int | None = None
    max_steps: int | None = None       # batches per epoch (tiny runs)
    pretrained: bool | None = None     # None: the recipe's
    saliency: str = "mlnet"            # the "with saliency" model
    device: str = "auto"
    threads: int | None = None
    jobs: int = 1                      # runs trained at once, each in its own process (CPU)
    progress: bool = True
    command: str = ""
    log: Callable[[str], None] = print

    @classmethod
    def tiny(cls, **kw: Any) -> "Settings":
        """A few samples, one epoch of two batches: for tests and smoke checks."""
        base = dict(seeds=(0,), epochs=1, train_limit=24, val_limit=8, test_limit=16, batch_size=8,
                    max_steps=2, progress=False)
        base.update(kw)
        return cls(**base)


# Defaults chosen so the whole set fits about 8 h on 2 CPU cores (see docs/experiments/README.md).
DATASET_DEFAULTS: dict[str, dict[str, Any]] = {
    "utkface": {"tasks": ("age", "gender"), "epochs": 5, "train": 5000, "val": 1000, "test": None},
    "ferplus": {"tasks": ("expression",), "epochs": 6, "train": 8000, "val": 1000, "test": None},
}


def _limit(v: int | None, default: int | None) -> int | None:
    return default if v == -1 else v


# ------------------------------------------------------------------------------------ cache views

@dataclass
class CacheView(CropCache):
    """Some samples of a crop cache, read into memory, optionally with their splits reassigned.
    Behaves like a :class:`CropCache` for :func:`salface.train.train`."""

    parent: CropCache | None = None
    index: np.ndarray | None = None

    def saliency(self, name: str) -> np.ndarray:
        assert self.parent is not None and self.index is not None
        return np.asarray(self.parent.saliency(name)[self.index])

    def soft_targets(self, task: str) -> np.ndarray | None:
        assert self.parent is not None and self.index is not None
        t = self.parent.soft_targets(task)
        return None if t is None else np.asarray(t[self.index])

    @property
    def paths(self) -> list[str]:
        assert self.parent is not None and self.index is not None
        p = self.parent.paths
        return [p[i] for i in self.index]


def cache_view(cc: CropCache, index: np.ndarray, split: np.ndarray | None = None) -> CacheView:
    """The samples ``index`` (sorted) of ``cc``; ``split`` (one id per index) replaces their split."""
    idx = np.asarray(index, dtype=np.int64)
    order = np.argsort(idx, kind="stable")
    idx = idx[order]
    sp = np.asarray(cc.split[idx]) if split is None else np.asarray(split, np.int8)[order]
    return CacheView(root=cc.root, meta=dict(cc.meta), crops=np.asarray(cc.crops[idx]),
                     labels=np.asarray(cc.labels[idx]), split=sp, boxes=np.asarray(cc.boxes[idx]),
                     landmarks=np.asarray(cc.landmarks[idx]), detected=np.asarray(cc.detected[idx]),
                     parent=cc, index=idx)


def subset_index(cc: CropCache, limits: dict[str, int | None], seed: int = 0) -> np.ndarray:
    """Up to ``limits[split]`` samples of each split (all when None), drawn with ``seed``, sorted."""
    rng = np.random.default_rng(seed)
    out = []
    for sp in ("train", "val", "test"):
        idx = cc.indices(sp)
        lim = limits.get(sp)
        if lim is not None and lim < len(idx):
            idx = np.sort(rng.choice(idx, size=lim, replace=False))
        out.append(idx)
    return np.sort(np.concatenate(out))


def ensure_saliency(cc: CropCache, name: str, log: Callable[[str], None] = print,
                    progress: bool = True, device: str = "cpu") -> None:
    """Build the cache's ``name`` saliency maps if they are missing (resumable)."""
    if name == "none":
        return
    from .cache import CacheError, build_saliency_cache

    def present() -> bool:
        try:
            cc.saliency(name)
            return True
        except CacheError:
            return False

    if present():
        return
    with file_lock(Path(cc.root) / f"saliency_{name}.lock", f"the {name} saliency maps of {cc.root}", log):
        if present():                # built by another process while this one waited
            return
        from .saliency import get_saliency

        log(f"computing {name} saliency maps for {cc.root} ({len(cc)} crops)")
        build_saliency_cache(cc, name, progress=progress, model=get_saliency(name, device=device))


# ------------------------------------------------------------------------------------ runs

@dataclass(frozen=True)
class RunSpec:
    """One training run of an experiment."""

    dataset: str
    cache: str
    tasks: tuple[str, ...]
    preset: str = "default"
    backbone: str | None = None       # None: the preset's
    pretrained: bool | None = None    # None: the preset's
    saliency: str = "mlnet"
    ratio: float = 0.3
    seed: int = 0
    epochs: int = 5
    train_limit: int | None = None
    val_limit: int | None = None
    test_limit: int | None = None
    batch_size: int | None = None
    max_steps: int | None = None
    freeze: int | None = None         # None: the preset's (0 for a backbone trained from scratch)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["tasks"] = list(self.tasks)
        return d

    def name(self, cache_key: str = "") -> str:
        h = hashlib.sha256(json.dumps({**self.to_dict(), "cache_key": cache_key}, sort_keys=True).encode())
        bb = self.backbone or "preset"
        sal = "none" if self.saliency == "none" else f"{self.saliency}-r{self.ratio:g}"
        return (f"{self.dataset}-{'+'.join(self.tasks)}-{bb}-{sal}-e{self.epochs}-s{self.seed}-"
                f"{h.hexdigest()[:8]}")


@dataclass
class RunResult:
    spec: RunSpec
    run_dir: Path
    metrics: dict[str, Any]                    # {task: task_metrics} on the test subset
    index: np.ndarray                          # cache indices of the test images
    y_true: dict[str, np.ndarray]
    y_pred: dict[str, np.ndarray]
    history: list[dict[str, Any]]
    info: dict[str, Any] = field(default_factory=dict)

    def correct(self, task: str) -> np.ndarray:
        keep = self.y_true[task] >= 0
        return (self.y_true[task] == self.y_pred[task])[keep]


def _open_cache(path: str | Path) -> CropCache:
    return open_crop_cache(path)


def _weights_available(backbone: str) -> bool:
    from .models.backbones import _have_weights

    if backbone == "gilnet":
        return False
    if backbone == "mobilenet_v2":
        return True          # required: build_classifier raises a clear error when it is missing
    return _have_weights("alexnet" if backbone.startswith("alexnet") else backbone)


def _protocol_preset(p, s: "Settings", size: int):
    """A paper preset at ``size`` px; without ImageNet weights here the backbone trains from
    scratch with nothing frozen (said in the report)."""
    pre = p.pretrained if s.pretrained is None else s.pretrained
    over: dict[str, Any] = {"input_size": size, "epochs": s.epochs, "batch_size": s.batch_size}
    if pre and not _weights_available(p.backbone):
        pre = False
    over["pretrained"] = pre
    if not pre:
        over["freeze"] = 0
    return p.with_overrides(**over)


def _preset_for(spec: RunSpec, cc: CropCache):
    from .presets import get_preset

    p = get_preset(spec.preset, spec.tasks)
    over: dict[str, Any] = {"input_size": cc.size, "epochs": spec.epochs, "batch_size": spec.batch_size,
                            "color": cc.color}
    if spec.backbone:
        over["backbone"] = spec.backbone
    pre = p.pretrained if spec.pretrained is None else spec.pretrained
    bb = over.get("backbone", p.backbone)
    if pre and not _weights_available(bb):
        pre = False                  # no ImageNet weights here: from scratch, said in the tables
    over["pretrained"] = pre
    if spec.freeze is not None:
        over["freeze"] = spec.freeze
    elif not pre:
        over["freeze"] = 0           # freezing random layers makes no sense
    return p.with_overrides(**over)


def run_one(spec: RunSpec, s: Settings) -> RunResult:
    """Train (or resume, or reuse) one run and evaluate its best weights on the test subset."""
    cc = _open_cache(spec.cache)
    run_dir = Path(s.runs_dir) / spec.name(cc.meta["key"])
    done = _finished_result(spec, run_dir)
    if done is not None:
        return done
    with file_lock(run_dir.parent / ".locks" / f"{run_dir.name}.lock", f"run {run_dir.name}", s.log):
        done = _finished_result(spec, run_dir)      # another process may have finished it meanwhile
        return done if done is not None else _train_and_test(spec, s, cc, run_dir)


def _finished_result(spec: RunSpec, run_dir: Path) -> RunResult | None:
    rec_p = run_dir / "eval_test.json"
    pred_p = run_dir / "test_predictions.npz"
    if not (rec_p.exists() and pred_p.exists()):
        return None
    rec = json.loads(rec_p.read_text())
    z = np.load(pred_p)
    return RunResult(spec, run_dir, rec["metrics"], z["index"],
                     {t: z[f"true_{t}"] for t in spec.tasks}, {t: z[f"pred_{t}"] for t in spec.tasks},
                     rec["history"], rec["info"])


def _train_and_test(spec: RunSpec, s: Settings, cc: CropCache, run_dir: Path) -> RunResult:
    import torch

    from .evaluate import git_commit, machine, predict_arrays, task_metrics
    from .train import load_run, train

    rec_p = run_dir / "eval_test.json"
    pred_p = run_dir / "test_predictions.npz"
    device = resolve_device(s.device)
    if s.threads:
        torch.set_num_threads(s.threads)
    idx = subset_index(cc, {"train": spec.train_limit, "val": spec.val_limit, "test": spec.test_limit})
    ensure_saliency(cc, spec.saliency, s.log, s.progress, device)
    view = cache_view(cc, idx)
    preset = _preset_for(spec, cc)
    t0 = time.time()
    state = run_dir / "state.json"
    finished = state.exists() and json.loads(state.read_text()).get("finished")
    if not finished:
        s.log(f"training {run_dir.name}")
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "spec.json").write_text(json.dumps(spec.to_dict(), indent=1))
        train(preset, view, out_dir=run_dir, seed=spec.seed, resume=state.exists(), device=device,
              saliency=spec.saliency, ratio=spec.ratio if spec.saliency != "none" else None,
              max_steps=spec.max_steps, progress=s.progress, threads=s.threads, log=s.log)
    wall_train = time.time() - t0
    model, config, _ = load_run(run_dir, "best", device=device)
    te = np.flatnonzero(view.split == 2)
    if len(te) == 0:
        raise ValueError(f"{spec.cache}: the test split of this run is empty")
    maps = view.saliency(config.saliency)[te] if config.saliency != "none" else None
    t1 = time.time()
    probs = predict_arrays(model, config, view.crops[te], maps, tta_flip=preset.tta_flip, device=device)
    y_true = {t: view.task_labels(t)[te] for t in spec.tasks}
    y_pred = {t: probs[t].argmax(1) for t in spec.tasks}
    metrics = {t: task_metrics(t, y_true[t], y_pred[t]) for t in spec.tasks if (y_true[t] >= 0).any()}
    history = json.loads((run_dir / "metrics.json").read_text())
    info = {"device": device, "machine": machine(), "commit": git_commit(),
            "pretrained": bool(preset.pretrained), "backbone": preset.backbone,
            "input_size": preset.input_size, "color": preset.color, "preset": preset.name,
            "n_train": int(np.sum(view.split == 0)), "n_val": int(np.sum(view.split == 1)),
            "n_test": int(len(te)), "best_epoch": json.loads(state.read_text()).get("best_epoch"),
            "train_seconds": float(sum(h.get("train_seconds", 0.0) for h in history)),
            "epoch_seconds": float(np.mean([h.get("train_seconds", 0.0) for h in history])),
            "wall_seconds_this_call": round(wall_train + time.time() - t1, 1),
            "eval_seconds": round(time.time() - t1, 1),
            "params": int(sum(p.numel() for p in model.parameters()))}
    np.savez(pred_p, index=view.index[te], **{f"true_{t}": y_true[t] for t in spec.tasks},
             **{f"pred_{t}": y_pred[t] for t in spec.tasks})
    rec_p.write_text(json.dumps({"spec": spec.to_dict(), "metrics": metrics, "history": history,
                                 "info": info}, indent=1))
    return RunResult(spec, run_dir, metrics, view.index[te], y_true, y_pred, history, info)


# ------------------------------------------------------------------------------------ reports

def _pct(v: float | None, digits: int = 2) -> str:
    return "–" if v is None else f"{100 * v:.{digits}f} %"


def _pm(vals: Sequence[float]) -> str:
    from .evaluate import mean_std

    m, sd = mean_std(vals)
    return f"{100 * m:.2f} ± {100 * sd:.2f} %" if len(vals) > 1 else f"{100 * m:.2f} %"


def _header(title: str, s: Settings, wall: float, extra: dict[str, Any]) -> list[str]:
    from .evaluate import git_commit, machine

    lines = [f"# {title}", "",
             f"- command: `{s.command or 'salface experiment …'}`",
             f"- commit: `{git_commit()}`",
             f"- machine: {machine()}; device: {resolve_device(s.device)}",
             f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
             f"- wall time of this call: {wall / 60:.1f} min (finished runs are reused, not retrained)"]
    lines += [f"- {k}: {v}" for k, v in extra.items()]
    return lines + [""]


def _runs_time(results: Sequence[RunResult]) -> str:
    """Training time of ``results`` and where they were trained (runs record their device,
    machine and commit; a report may be written later, elsewhere, from finished runs)."""
    tot = sum(r.info.get("train_seconds", 0.0) for r in results)
    where = sorted({f"{r.info.get('machine', 'machine not recorded')} ({r.info.get('device', '?')}, "
                    f"commit {r.info.get('commit', '?')})" for r in results})
    return (f"{tot / 60:.1f} min of training in {len(results)} runs (sum of their epoch times), "
            f"trained on: {'; '.join(where)}")


def _subset_text(spec: RunSpec, r: RunResult) -> str:
    return (f"{r.info['n_train']} train / {r.info['n_val']} val / {r.info['n_test']} test faces of "
            f"`{Path(spec.cache).name}` ({spec.epochs} epochs, {r.info['input_size']} px {r.info['color']}, "
            f"subsets drawn with seed 0)")


def write_experiment(name: str, s: Settings, title: str, body: list[str], payload: dict[str, Any],
                     wall: float, extra: dict[str, Any], summary: list[str] | None = None) -> Path:
    """``<out>/<name>/README.md`` + ``result.json``; refresh the block of ``<out>/README.md``."""
    from .evaluate import git_commit, machine

    out = Path(s.out_dir) / name
    out.mkdir(parents=True, exist_ok=True)
    md = _header(title, s, wall, extra) + body
    (out / "README.md").write_text("\n".join(md) + "\n")
    payload = {"experiment": name, "title": title, "command": s.command, "commit": git_commit(),
               "machine": machine(), "device": resolve_device(s.device),
               "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "wall_seconds": round(wall, 1),
               "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in extra.items()}, **payload}
    (out / "result.json").write_text(json.dumps(payload, indent=1, default=_json_default))
    update_index(Path(s.out_dir) / "README.md", name,
                 (summary if summary is not None else body[:12])
                 + ["", f"Command: `{s.command}` — commit `{payload['commit']}`, {payload['date']}, "
                        f"wall {wall / 60:.1f} min"
                        + (f"; runs: {extra['runs']}" if isinstance(extra.get("runs"), str) else "")
                        + f". Full report: [{name}/README.md]({name}/README.md)"])
    return out / "README.md"


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o)}")


def update_index(readme: Path, name: str, lines: list[str]) -> None:
    """Replace the text between ``<!-- exp:NAME -->`` and ``<!-- /exp:NAME -->`` in ``readme``
    (nothing happens when the file or the markers are absent)."""
    if not readme.exists():
        return
    text = readme.read_text()
    pat = re.compile(rf"(<!-- exp:{re.escape(name)} -->\n).*?(<!-- /exp:{re.escape(name)} -->)", re.S)
    if not pat.search(text):
        return
    new = pat.sub(lambda m: m.group(1) + "\n".join(lines) + "\n" + m.group(2), text)
    readme.write_text(new)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _savefig(fig, path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _plt().close(fig)
    return path.name


# ------------------------------------------------------------------------------------ helpers

def _spec(s: Settings, dataset: str, **kw: Any) -> RunSpec:
    d = DATASET_DEFAULTS[dataset]
    cache = str(s.utk_cache if dataset == "utkface" else s.fer_cache)
    base = dict(dataset=dataset, cache=cache, tasks=d["tasks"], epochs=s.epochs or d["epochs"],
                train_limit=_limit(s.train_limit, d["train"]), val_limit=_limit(s.val_limit, d["val"]),
                test_limit=_limit(s.test_limit, d["test"]), batch_size=s.batch_size,
                max_steps=s.max_steps, pretrained=s.pretrained, saliency=s.saliency)
    base.update(kw)
    return RunSpec(**base)


def _task_of(dataset: str) -> str:
    return "gender" if dataset == "utkface" else "expression"


def onoff_specs(s: Settings, datasets: Sequence[str] = ("utkface", "ferplus")) -> list[RunSpec]:
    """Experiment 1's runs: every dataset × (none, ``s.saliency``) × seed."""
    return [_spec(s, ds, saliency=sal, seed=seed) for ds in datasets for sal in ("none", s.saliency)
            for seed in s.seeds]


def ratio_specs(s: Settings, dataset: str = "utkface", ratios: Sequence[float] = ()) -> list[RunSpec]:
    """One run per ratio; r = 0 is the identity (``crop × 1``), so it is the no-saliency run that
    the saliency-source experiment trains too."""
    return [_spec(s, dataset, tasks=(_task_of(dataset),), seed=s.seeds[0],
                  **({"saliency": "none"} if float(r) == 0.0 else {"ratio": float(r)}))
            for r in (ratios or RATIOS)]


def source_specs(s: Settings, dataset: str = "utkface", sources: Sequence[str] = (), ratio: float = 0.3
                 ) -> list[RunSpec]:
    return [_spec(s, dataset, tasks=(_task_of(dataset),), saliency=src, ratio=float(ratio), seed=sd)
            for src in (sources or SOURCES) for sd in s.seeds]


def backbone_specs(s: Settings, dataset: str = "utkface", names: Sequence[str] = ()) -> list[RunSpec]:
    """The recipe's own backbone (MobileNetV2) gets ``backbone=None`` so that its run is the one
    the ratio sweep and the saliency-source experiment train too."""
    from .presets import get_preset

    task = _task_of(dataset)
    own = get_preset("default", (task,)).backbone
    return [_spec(s, dataset, tasks=(task,), backbone=None if b == own else b, seed=s.seeds[0])
            for b in (names or [b for b in BACKBONE_SET if b != "vgg16"])]


def cam_specs(s: Settings) -> list[RunSpec]:
    return [_spec(s, "utkface", saliency=s.saliency, seed=s.seeds[0]),
            _spec(s, "ferplus", saliency=s.saliency, seed=s.seeds[0]),
            _spec(s, "utkface", tasks=("gender",), backbone="alexnet_gap", seed=s.seeds[0])]


def heads_specs(s: Settings) -> list[RunSpec]:
    """The runs of the heads experiment: the age + gender network of experiment 1's saliency arm
    and one network per task (the gender ones are experiment 3's ML-Net runs)."""
    both = [_spec(s, "utkface", saliency=s.saliency, seed=sd) for sd in s.seeds]
    single = [_spec(s, "utkface", tasks=(t,), saliency=s.saliency, ratio=0.3, seed=sd)
              for t in ("age", "gender") for sd in s.seeds]
    return both + single


def _estimate_minutes(sp: RunSpec, cc: CropCache, rate64: float) -> float:
    n_train = len(cc.indices("train")) if sp.train_limit is None else min(sp.train_limit, len(cc.indices("train")))
    steps = (min(sp.max_steps * (sp.batch_size or 64), n_train) if sp.max_steps else n_train) * sp.epochs
    return steps / (rate64 * (64 / cc.size) ** 2) / 60


def _train_worker(spec: RunSpec, s: Settings) -> tuple[str, float]:
    t0 = time.time()
    r = run_one(spec, s)
    return r.run_dir.name, time.time() - t0


def train_runs(specs: Sequence[RunSpec], s: Settings) -> None:
    """Train the unfinished runs of ``specs`` ``s.jobs`` at a time, each in its own process with
    ``cores // jobs`` CPU threads (two one-thread runs on 2 cores train 1.3–1.6× as many images per
    second as one two-thread run; see docs/experiments/README.md). With ``jobs`` ≤ 1 it does nothing:
    the experiment then trains its runs one after another in this process. Saliency maps a run
    needs are built first, here, with every thread. A failed run is reported after the others
    finished, so one bad run never throws away the rest."""
    if s.jobs <= 1:
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    todo: dict[str, tuple[RunSpec, float]] = {}
    for sp in specs:
        cc = _open_cache(sp.cache)
        rd = Path(s.runs_dir) / sp.name(cc.meta["key"])
        if rd.name not in todo and _finished_result(sp, rd) is None:
            todo[rd.name] = (sp, _estimate_minutes(sp, cc, 100.0))
    if len(todo) <= 1:
        return
    device = resolve_device(s.device)
    for cache, sal in sorted({(sp.cache, sp.saliency) for sp, _ in todo.values()}):
        ensure_saliency(_open_cache(cache), sal, s.log, s.progress, device)
    threads = s.threads or max(1, (os.cpu_count() or 1) // s.jobs)
    child = replace(s, jobs=1, threads=threads, progress=False, log=print)
    order = sorted(todo.values(), key=lambda x: -x[1])           # longest first
    s.log(f"training {len(order)} runs, {s.jobs} at a time, {threads} thread(s) each")
    errors: list[tuple[str, BaseException]] = []
    with ProcessPoolExecutor(max_workers=min(s.jobs, len(order)),
                             mp_context=multiprocessing.get_context("spawn")) as ex:
        futures = {ex.submit(_train_worker, sp, child): sp for sp, _ in order}
        for f in as_completed(futures):
            name = futures[f].name(_open_cache(futures[f].cache).meta["key"])
            try:
                _, sec = f.result()
                s.log(f"finished {name} ({sec / 60:.1f} min)")
            except Exception as exc:       # noqa: BLE001 - reported below, after the other runs
                s.log(f"failed {name}: {exc}")
                errors.append((name, exc))
    if errors:
        name, exc = errors[0]
        raise RuntimeError(f"{len(errors)} run(s) failed; first: {name}: {exc}") from exc


def plan(s: Settings, rate64: float = 107.0) -> dict[str, Any]:
    """The runs of experiments 1-5 (shared runs listed once), whether each is done, and the
    estimated training time at ``rate64`` training images/s at 64 px, scaled by pixel count for
    other sizes (MobileNetV2's measured 64 → 96 px ratio, 325 → 143 img/s, is 0.44 ≈ (64/96)²)."""
    groups = {"saliency-onoff": onoff_specs(s), "ratio-sweep": ratio_specs(s), "saliency-source": source_specs(s),
              "backbones": backbone_specs(s), "heads": heads_specs(s), "cam": cam_specs(s)}
    seen: set[str] = set()
    out: dict[str, Any] = {"experiments": {}, "total_minutes": 0.0, "todo_minutes": 0.0, "rate64": rate64}
    caches: dict[str, CropCache] = {}
    for name, specs in groups.items():
        rows = []
        for sp in specs:
            cc = caches.setdefault(sp.cache, _open_cache(sp.cache))
            rd = Path(s.runs_dir) / sp.name(cc.meta["key"])
            if rd.name in seen:
                continue
            seen.add(rd.name)
            minutes = _estimate_minutes(sp, cc, rate64)
            if (rd / "eval_test.json").exists():
                status, left = "done", 0.0
            elif (rd / "state.json").exists():
                ep = json.loads((rd / "state.json").read_text()).get("epoch", 0)
                status, left = f"{ep}/{sp.epochs} epochs", minutes * (1 - ep / sp.epochs)
            else:
                status, left = "to do", minutes
            rows.append({"run": rd.name, "status": status, "minutes": round(minutes, 1)})
            out["total_minutes"] += minutes
            out["todo_minutes"] += left
        out["experiments"][name] = rows
    out["total_minutes"] = round(out["total_minutes"], 1)
    out["todo_minutes"] = round(out["todo_minutes"], 1)
    return out


def _verdict(p: float, diff: float, alpha: float = 0.05) -> str:
    if p >= alpha:
        return f"no significant difference (p = {p:.3g} ≥ {alpha})"
    return (f"saliency **helps** significantly (p = {p:.3g})" if diff > 0
            else f"saliency **hurts** significantly (p = {p:.3g})")


def _paired(a: Sequence[RunResult], b: Sequence[RunResult], task: str, n_boot: int = 10000) -> dict[str, Any]:
    """Per-seed exact McNemar (pairs a[i], b[i]), a bootstrap over images of the per-image mean
    correctness, and — with two or more seeds — a bootstrap over seeds and images, which is the
    test the verdicts use (``primary``): a difference one seed carries is not called significant."""
    from .stats import mcnemar, paired_bootstrap, seed_image_bootstrap

    for x, y in zip(a, b):
        if not np.array_equal(x.index, y.index):
            raise ValueError(f"{x.run_dir.name} and {y.run_dir.name} were tested on different images")
    per_seed = [mcnemar(x.correct(task), y.correct(task), "exact").to_dict() for x, y in zip(a, b)]
    ca = np.mean([x.correct(task) for x in a], axis=0)
    cb = np.mean([y.correct(task) for y in b], axis=0)
    boot = paired_bootstrap(ca, cb, n_boot=n_boot).to_dict()
    out = {"mcnemar_per_seed": per_seed, "bootstrap_mean_over_seeds": boot, "primary": boot}
    if len(a) >= 2:
        out["bootstrap_seeds_and_images"] = seed_image_bootstrap(
            [x.correct(task) for x in a], [y.correct(task) for y in b], n_boot=n_boot).to_dict()
        out["primary"] = out["bootstrap_seeds_and_images"]
    return out


SIGNIFICANCE_NOTE = ("p: with several seeds, a paired bootstrap that resamples the seeds and then the test "
                     "images (10,000 resamples), so a difference one seed carries is not called significant; "
                     "\"images only\" resamples the images of the per-image share of seeds that were right, "
                     "treating the seeds as fixed (it was the only test before session 4). With one seed both "
                     "are the same.")


# ------------------------------------------------------------------------------------ 1. on/off

def saliency_onoff(s: Settings, datasets: Sequence[str] = ("utkface", "ferplus")) -> Path:
    """Experiment 1: the same recipe with and without saliency, ``s.seeds`` seeds per arm."""
    t0 = time.time()
    rows, payload, body = [], {"datasets": {}}, []
    all_runs: list[RunResult] = []
    fig_data = []
    train_runs(onoff_specs(s, datasets), s)
    for ds in datasets:
        arms = {}
        for sal in ("none", s.saliency):
            arms[sal] = [run_one(sp, s) for sp in onoff_specs(s, (ds,)) if sp.saliency == sal]
            all_runs += arms[sal]
        off, on = arms["none"], arms[s.saliency]
        dsp = {"subset": _subset_text(off[0].spec, off[0]), "tasks": {}}
        for t in off[0].spec.tasks:
            acc_off = [r.metrics[t]["accuracy"] for r in off]
            acc_on = [r.metrics[t]["accuracy"] for r in on]
            test = _paired(off, on, t)
            bt = test["primary"]
            verdict = _verdict(bt["p_value"], bt["difference"])
            ps = ", ".join(f"{m['p_value']:.3g}" for m in test["mcnemar_per_seed"])
            paper = PAPER["saliency-onoff"].get(t, {})
            rows.append(f"| {ds} | {t} | {_pm(acc_off)} | {_pm(acc_on)} | {100 * bt['difference']:+.2f} "
                        f"[{100 * bt['ci_low']:+.2f}, {100 * bt['ci_high']:+.2f}] | {ps} | {bt['p_value']:.3g} | "
                        f"{test['bootstrap_mean_over_seeds']['p_value']:.3g} | "
                        f"{verdict} | {paper.get('without', '–')} → {paper.get('with', '–')} |")
            dsp["tasks"][t] = {"accuracy_without": acc_off, "accuracy_with": acc_on, "tests": test,
                               "verdict": verdict, "seeds": list(s.seeds)}
            fig_data.append((f"{ds}\n{t}", acc_off, acc_on))
        payload["datasets"][ds] = dsp
    helps = [f"{ds} {t}" for ds, d in payload["datasets"].items() for t, v in d["tasks"].items()
             if "helps" in v["verdict"]]
    not_helps = [f"{ds} {t}" for ds, d in payload["datasets"].items() for t, v in d["tasks"].items()
                 if "helps" not in v["verdict"]]
    verdict = ((f"Saliency helps significantly here for: {', '.join(helps)}. " if helps else "")
               + (f"**Saliency does not help here** (no significant gain at p < 0.05) for: {', '.join(not_helps)}."
                  if not_helps else ""))
    payload["verdict"] = verdict
    head = [f"| data | task | without saliency | with {s.saliency} (r = 0.3) | Δ (pp) [95 % CI] | "
            f"McNemar p per seed | p (seeds + images) | p (images only) | verdict | paper (without → with; "
            f"{DIFFERENT_DATA}) |", "|---|---|---|---|---|---|---|---|---|---|"]
    plt = _plt()
    fig, ax = plt.subplots(figsize=(1.8 + 1.6 * len(fig_data), 3.6))
    x = np.arange(len(fig_data))
    for k, (lab, col) in enumerate((("without saliency", "tab:gray"), (f"with {s.saliency}", "tab:orange"))):
        means = [100 * np.mean(d[1 + k]) for d in fig_data]
        sds = [100 * np.std(d[1 + k], ddof=1) if len(d[1 + k]) > 1 else 0 for d in fig_data]
        ax.bar(x + (k - 0.5) * 0.38, means, 0.38, yerr=sds, capsize=3, label=lab, color=col)
    ax.set_xticks(x, [d[0] for d in fig_data], fontsize=8)
    ax.set_ylabel("test accuracy (%)")
    ax.legend(fontsize=8)
    png = _savefig(fig, Path(s.out_dir) / "saliency-onoff" / "accuracy.png")
    body = head + rows + ["", verdict, "", f"![accuracy with and without saliency]({png})", "",
                          "Mean ± sample std over seeds. Δ = with − without, in percentage points, with the "
                          "95 % CI of the seeds + images bootstrap; McNemar: exact binomial test per seed pair "
                          "(same seed, same test images). A p-value ≥ 0.05 means the data here do not show "
                          "that saliency helps. " + SIGNIFICANCE_NOTE,
                          "", "Subsets: " + "; ".join(f"{d}: {p['subset']}" for d, p in payload["datasets"].items())]
    extra = {"seeds": list(s.seeds), "runs": _runs_time(all_runs)}
    return write_experiment("saliency-onoff", s, "Experiment 1 — with and without saliency", body,
                            payload, time.time() - t0, extra, summary=head + rows + ["", verdict, "", f"![]({'saliency-onoff/' + png})"])


# ------------------------------------------------------------------------------------ 2. ratios

RATIOS = (0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0)


def ratio_sweep(s: Settings, dataset: str = "utkface", ratios: Sequence[float] = RATIOS) -> Path:
    """Experiment 2: one run per ratio (seed ``s.seeds[0]``); curves per epoch and test accuracy vs r."""
    t0 = time.time()
    task = _task_of(dataset)
    specs = ratio_specs(s, dataset, ratios)
    train_runs(specs, s)
    runs = [run_one(sp, s) for sp in specs]
    plt = _plt()
    name = "ratio-sweep" if dataset == "utkface" else f"ratio-sweep-{dataset}"
    out = Path(s.out_dir) / name
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
    for r, run in zip(ratios, runs):
        ep = [h["epoch"] for h in run.history]
        a1.plot(ep, [h["train_loss"] for h in run.history], marker="o", ms=3, label=f"r = {r:g}")
        a2.plot(ep, [100 * h[f"val_{task}_accuracy"] for h in run.history], marker="o", ms=3, label=f"r = {r:g}")
    a1.set(xlabel="epoch", ylabel="training loss", title="training loss")
    a2.set(xlabel="epoch", ylabel="validation accuracy (%)", title=f"validation accuracy ({task})")
    a1.legend(fontsize=7)
    a2.legend(fontsize=7)
    curves = _savefig(fig, out / "curves.png")
    fig, ax = plt.subplots(figsize=(5, 3.4))
    accs = [100 * run.metrics[task]["accuracy"] for run in runs]
    ax.plot(list(ratios), accs, marker="o")
    ax.set(xlabel="reweighted ratio r", ylabel="test accuracy (%)", title=f"{dataset} {task}")
    vs = _savefig(fig, out / "test_vs_ratio.png")
    from .stats import mcnemar

    ref = runs[list(ratios).index(0.0)] if 0.0 in ratios else runs[0]
    rows = ["| r | test accuracy | best epoch (val) | final train loss | McNemar p vs r = 0 |", "|---|---|---|---|---|"]
    for r, run in zip(ratios, runs):
        p = mcnemar(ref.correct(task), run.correct(task)).p_value
        rows.append(f"| {r:g} | {_pct(run.metrics[task]['accuracy'])} | {run.info['best_epoch']} | "
                    f"{run.history[-1]['train_loss']:.4f} | {p:.3g} |")
    best = ratios[int(np.argmax(accs))]
    body = rows + ["", f"Best test accuracy here at r = {best:g}.", "",
                   f"Paper: {PAPER['ratio-sweep']} ({DIFFERENT_DATA}).", "",
                   f"![training loss and validation accuracy per ratio]({curves})", "",
                   f"![test accuracy against r]({vs})", "", "Subset: " + _subset_text(runs[0].spec, runs[0])]
    payload = {"task": task, "ratios": list(ratios), "test_accuracy": [a / 100 for a in accs],
               "histories": {f"{r:g}": run.history for r, run in zip(ratios, runs)}}
    return write_experiment(name, s, f"Experiment 2 — reweighted ratio sweep ({dataset} {task})", body, payload,
                            time.time() - t0, {"seed": s.seeds[0], "saliency": s.saliency, "runs": _runs_time(runs)},
                            summary=rows + ["", f"![]({name}/{curves})"])


# ------------------------------------------------------------------------------------ 3. sources

SOURCES = ("mlnet", "spectral-residual", "frequency-tuned", "centre", "none")


def saliency_source(s: Settings, dataset: str = "utkface", sources: Sequence[str] = SOURCES,
                    ratio: float = 0.3) -> Path:
    """Experiment 3: the same recipe with each saliency source at ``ratio``, ``s.seeds`` seeds."""
    t0 = time.time()
    task = _task_of(dataset)
    specs = source_specs(s, dataset, sources, ratio)
    train_runs(specs, s)
    runs = {src: [run_one(sp, s) for sp in specs if sp.saliency == src] for src in sources}
    rows = ["| saliency | test accuracy (mean ± std over seeds) | Δ vs none [95 % CI] | p vs none | "
            "Δ vs centre | p vs centre |", "|---|---|---|---|---|---|"]
    payload: dict[str, Any] = {"task": task, "ratio": ratio, "sources": {}}
    for src in sources:
        accs = [r.metrics[task]["accuracy"] for r in runs[src]]
        cells = [src, _pm(accs)]
        entry: dict[str, Any] = {"accuracy": accs}
        for ref in ("none", "centre"):
            if ref in runs and ref != src:
                test = _paired(runs[ref], runs[src], task)["primary"]
                cells += [f"{100 * test['difference']:+.2f} [{100 * test['ci_low']:+.2f}, {100 * test['ci_high']:+.2f}]",
                          f"{test['p_value']:.3g}"]
                entry[f"vs_{ref}"] = test
            else:
                cells += ["–", "–"]
        rows.append("| " + " | ".join(cells) + " |")
        payload["sources"][src] = entry
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.4))
    m = [100 * np.mean(payload["sources"][x]["accuracy"]) for x in sources]
    sd = [100 * np.std(payload["sources"][x]["accuracy"], ddof=1) if len(s.seeds) > 1 else 0 for x in sources]
    ax.bar(range(len(sources)), m, yerr=sd, capsize=3, color="tab:blue")
    ax.set_xticks(range(len(sources)), sources, rotation=20, fontsize=8)
    ax.set_ylim(max(0, min(m) - 10), min(100, max(m) + 5))
    ax.set_ylabel(f"test accuracy (%), {task}")
    png = _savefig(fig, Path(s.out_dir) / "saliency-source" / "accuracy.png")
    first = runs[sources[0]][0]
    body = rows + ["", SIGNIFICANCE_NOTE + " The question: does a learned saliency model (ML-Net) beat a "
                   "plain centre prior?", "",
                   f"![accuracy per saliency source]({png})", "", "Subset: " + _subset_text(first.spec, first),
                   "", "The papers did not run this comparison (they used ML-Net only)."]
    all_runs = [r for v in runs.values() for r in v]
    return write_experiment("saliency-source", s, f"Experiment 3 — saliency source ({dataset} {task}, r = {ratio:g})",
                            body, payload, time.time() - t0, {"seeds": list(s.seeds), "runs": _runs_time(all_runs)},
                            summary=rows)


# ------------------------------------------------------------------------------------ 4. backbones

BACKBONE_SET = ("mobilenet_v2", "gilnet", "alexnet", "alexnet_gap", "vgg16")


def backbones(s: Settings, dataset: str = "utkface", names: Sequence[str] | None = None) -> Path:
    """Experiment 4: backbones on gender with saliency at r = 0.3 (VGG-16 only when its ImageNet
    weights are in the torch cache, unless asked for by name)."""
    from .models.backbones import _have_weights

    t0 = time.time()
    task = _task_of(dataset)
    if names is None:
        names = [b for b in BACKBONE_SET if b != "vgg16" or _have_weights("vgg16")]
    specs = backbone_specs(s, dataset, names)
    train_runs(specs, s)
    runs = {b: run_one(sp, s) for b, sp in zip(names, specs)}
    rows = ["| backbone | ImageNet weights? | parameters | test accuracy | s / epoch | paper (Adience gender; "
            "different data) |", "|---|---|---|---|---|---|"]
    for b, r in runs.items():
        pre = "yes (ImageNet)" if r.info["pretrained"] else "no (from scratch)"
        paper = PAPER["backbones"].get(b.replace("_gap", ""), "–") if b != "alexnet_gap" else "– (CAM variant)"
        rows.append(f"| {b} | {pre} | {r.info['params'] / 1e6:.2f} M | {_pct(r.metrics[task]['accuracy'])} | "
                    f"{r.info['epoch_seconds']:.0f} | {paper} |")
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.4))
    ax.bar(range(len(runs)), [100 * r.metrics[task]["accuracy"] for r in runs.values()], color="tab:green")
    ax.set_xticks(range(len(runs)), [f"{b}\n({'IN' if r.info['pretrained'] else 'scratch'})"
                                     for b, r in runs.items()], fontsize=8)
    ax.set_ylabel(f"test accuracy (%), {task}")
    png = _savefig(fig, Path(s.out_dir) / "backbones" / "accuracy.png")
    first = next(iter(runs.values()))
    body = rows + ["", f"![accuracy per backbone]({png})", "", "Subset: " + _subset_text(first.spec, first),
                   "", f"Paper: {PAPER['backbones']['source']}. Here every backbone gets the same recipe, "
                   "epochs and input size; the ones without ImageNet weights here start from random weights "
                   "(no layer frozen), which the papers never did."]
    payload = {"task": task, "backbones": {b: {"accuracy": r.metrics[task]["accuracy"], **r.info}
                                            for b, r in runs.items()}}
    return write_experiment("backbones", s, f"Experiment 4 — backbones ({dataset} {task})", body, payload,
                            time.time() - t0, {"seed": s.seeds[0], "runs": _runs_time(list(runs.values()))},
                            summary=rows)


# ------------------------------------------------------------------------------------ heads

def heads(s: Settings) -> Path:
    """One MobileNetV2 with age and gender heads (what salface ships) against one network per
    task, same recipe, subset, saliency and seeds, on UTKFace: is the shared network at least as
    accurate? (SAF-BAGE and VEGAC train one network per task.)"""
    t0 = time.time()
    specs = heads_specs(s)
    train_runs(specs, s)
    n = len(s.seeds)
    both = [run_one(sp, s) for sp in specs[:n]]
    single = {t: [run_one(sp, s) for sp in specs[n:] if sp.tasks == (t,)] for t in ("age", "gender")}
    rows = ["| task | one network per task | one network, age + gender heads | Δ shared − per task (pp) "
            "[95 % CI] | McNemar p per seed | p (seeds + images) | p (images only) | verdict |",
            "|---|---|---|---|---|---|---|---|"]
    payload: dict[str, Any] = {"seeds": list(s.seeds), "tasks": {}}
    for t in ("age", "gender"):
        acc_single = [r.metrics[t]["accuracy"] for r in single[t]]
        acc_both = [r.metrics[t]["accuracy"] for r in both]
        test = _paired(single[t], both, t)
        bt = test["primary"]
        if bt["p_value"] >= 0.05:
            verdict = f"no significant difference (p = {bt['p_value']:.3g})"
        else:
            verdict = f"shared network significantly {'better' if bt['difference'] > 0 else '**worse**'}"
        ps = ", ".join(f"{m['p_value']:.3g}" for m in test["mcnemar_per_seed"])
        rows.append(f"| {t} | {_pm(acc_single)} | {_pm(acc_both)} | {100 * bt['difference']:+.2f} "
                    f"[{100 * bt['ci_low']:+.2f}, {100 * bt['ci_high']:+.2f}] | {ps} | {bt['p_value']:.3g} | "
                    f"{test['bootstrap_mean_over_seeds']['p_value']:.3g} | {verdict} |")
        entry: dict[str, Any] = {"accuracy_per_task_network": acc_single, "accuracy_shared": acc_both,
                                 "tests": test, "verdict": verdict}
        if t == "age":
            entry["one_off_per_task_network"] = [r.metrics[t]["one_off_accuracy"] for r in single[t]]
            entry["one_off_shared"] = [r.metrics[t]["one_off_accuracy"] for r in both]
            rows.append(f"| age, 1-off | {_pm(entry['one_off_per_task_network'])} | {_pm(entry['one_off_shared'])} "
                        "| | | | | |")
        payload["tasks"][t] = entry
    worse = [t for t, e in payload["tasks"].items() if "worse" in e["verdict"]]
    verdict = (f"The shared network is significantly worse on: {', '.join(worse)}." if worse else
               "The shared age + gender network is at least as accurate as one network per task here "
               "(no significant loss on either task), at half the inference cost for the two tasks.")
    payload["verdict"] = verdict
    p_both = both[0].info["params"]
    p_single = sum(single[t][0].info["params"] for t in ("age", "gender"))
    cost = (f"Cost per face for age and gender: one forward pass of {p_both / 1e6:.2f} M parameters "
            f"(shared) against two of {p_single / 2e6:.2f} M ({p_single / 1e6:.2f} M in all, per task).")
    payload["params"] = {"shared": p_both, "per_task_total": p_single}
    first = both[0]
    body = rows + ["", verdict, "", cost, "",
                   "Mean ± sample std over seeds; Δ and its CI from the seeds + images bootstrap; McNemar: "
                   "exact test per seed pair (same seed, same test images). " + SIGNIFICANCE_NOTE + " "
                   "The two-head network keeps the epoch "
                   "with the best mean of its two val accuracies, each single-task network the epoch best on "
                   "its own task.", "",
                   "Subset: " + _subset_text(first.spec, first)]
    all_runs = both + single["age"] + single["gender"]
    return write_experiment("heads", s, "One network with two heads against one network per task (UTKFace)",
                            body, payload, time.time() - t0, {"seeds": list(s.seeds), "runs": _runs_time(all_runs)},
                            summary=rows + ["", verdict, "", cost])


# ------------------------------------------------------------------------------------ 5. CAM

def cam_experiment(s: Settings, run_dirs: Sequence[str | Path] | None = None, n_examples: int = 6,
                   limit: int | None = None, models: Sequence[str] = (), name: str = "cam") -> Path:
    """Experiment 5: CAMs of the predicted class on the test faces of GAP models.

    Default models: MobileNetV2 + saliency seed ``s.seeds[0]`` of experiment 1 (age+gender on
    UTKFace, expression on FER+) and the AlexNet-GAP gender run of experiment 4 — trained here
    if they are not finished yet. ``models`` names bundled classifiers to explain instead (or as
    well, with ``run_dirs``), on the test split of ``s.utk_cache`` (age, gender) or ``s.fer_cache``
    (expression); ``name`` is the report's folder."""
    import torch

    from .explain import cam_overlay, class_activation_maps, summarize_shares
    from .models.preprocess import to_input_tensor
    from .models.registry import load_classifier
    from .train import load_run

    t0 = time.time()
    if run_dirs is None and not models:
        train_runs(cam_specs(s), s)
        run_dirs = [run_one(sp, s).run_dir for sp in cam_specs(s)]
    run_dirs = list(run_dirs or [])
    device = resolve_device(s.device)

    def targets():
        """(label, tag, model, config, cache, test indices) per model to explain."""
        for rd in run_dirs:
            rd = Path(rd)
            model, cfg, _ = load_run(rd, "best", device=device)
            cc = open_crop_cache(json.loads((rd / "config.json").read_text())["cache"])
            pred_p = rd / "test_predictions.npz"
            te = np.load(pred_p)["index"] if pred_p.exists() else cc.indices("test")
            tag = rd.name[-8:] if re.fullmatch(r".*-[0-9a-f]{8}", rd.name) else rd.name  # experiment runs: their hash
            yield rd.name, tag, model, cfg, cc, te
        for m in models:
            model, cfg = load_classifier(m, device=device)
            cc = open_crop_cache(s.fer_cache if "expression" in cfg.tasks else s.utk_cache)
            yield f"bundled {m}", m, model, cfg, cc, cc.indices("test")

    rows = ["| model | task | faces | CAM share eyes / nose / mouth / all three | uniform share | lift (all three) | "
            "faces above uniform |", "|---|---|---|---|---|---|---|"]
    payload: dict[str, Any] = {"models": {}}
    out = Path(s.out_dir) / name
    images = []
    plt = _plt()
    for label, tag, model, cfg, cc, te in targets():
        if not model.has_gap:
            s.log(f"skipping {label}: {cfg.backbone} has no global average pooling")
            continue
        if (cc.size, cc.color) != (cfg.input_size, cfg.color):
            raise ValueError(f"{label} takes {cfg.input_size} px {cfg.color} input, the cache {cc.root} "
                             f"holds {cc.size} px {cc.color} crops")
        te = te[np.asarray(cc.detected[te], bool)]
        if limit is not None and limit < len(te):   # a seeded sample, not the first files by name
            te = np.sort(np.random.default_rng(0).choice(te, size=limit, replace=False))
        if len(te) == 0:
            raise ValueError(f"{label}: no detected test faces with landmarks")
        crops = np.asarray(cc.crops[te])
        maps = np.asarray(cc.saliency(cfg.saliency)[te]) if cfg.saliency != "none" else None
        lms = np.asarray(cc.landmarks[te])
        entry = {}
        for t in cfg.tasks:
            cams = []
            for i in range(0, len(te), 128):
                x = to_input_tensor(crops[i:i + 128], maps[i:i + 128] if maps is not None else None, cfg, device)
                with torch.no_grad():
                    cams.append(class_activation_maps(model, x, t).maps)
            cam = np.concatenate(cams)
            summ = summarize_shares(cam, lms)
            entry[t] = summ
            sh, un = summ["share"], summ["uniform"]
            rows.append(f"| {label[:40]} ({cfg.backbone}) | {t} | {summ['n_faces']} | "
                        + " / ".join(f"{100 * sh[r]['mean']:.1f}" for r in ("eyes", "nose", "mouth", "features"))
                        + " % | " + " / ".join(f"{100 * un[r]['mean']:.1f}" for r in ("eyes", "nose", "mouth", "features"))
                        + f" % | {summ['lift']['features']:.2f} | {100 * summ['above_uniform']['features']:.0f} % |")
            k = min(n_examples, len(te))
            fig, axes = plt.subplots(1, k + 1, figsize=(1.9 * (k + 1), 2.3))
            axes = np.atleast_1d(axes)
            axes[0].imshow(cam.mean(axis=0), cmap="jet", vmin=0, vmax=1)
            axes[0].set_title(f"mean CAM\n({len(cam)} faces)", fontsize=7)
            for j in range(k):
                axes[j + 1].imshow(cam_overlay(crops[j], cam[j]))
                axes[j + 1].plot(lms[j][:, 0], lms[j][:, 1], "w.", ms=3)
            for a in axes:
                a.set_xticks([])
                a.set_yticks([])
            fig.suptitle(f"{cfg.backbone} — {t}", fontsize=8)
            images.append(_savefig(fig, out / f"cam_{cfg.backbone}_{t}_{tag}.png"))
        payload["models"][label] = {"backbone": cfg.backbone, "tasks": entry, "cache": str(cc.root)}
    body = rows + ["", "Share of the min–max normalised CAM's mass inside discs around the eyes, nose and "
                   "mouth (from the detector's landmarks; radii 0.25/0.25/0.35 × inter-ocular distance), "
                   "against a uniform map (the regions' area share). Lift = mean CAM share / mean uniform "
                   "share (> 1: the model looks at the features more than chance).", "",
                   "SAF-BAGE Figure 4 shows two CAMs (AffectNet) and says hair, face and mouth are "
                   f"activated; it gives no measured share ({DIFFERENT_DATA}).", ""]
    body += [f"![]({p})" for p in images]
    return write_experiment(name, s, "Experiment 5 — class activation maps on eyes, nose and mouth", body,
                            payload, time.time() - t0, {"runs": [str(r) for r in run_dirs],
                                                        "bundled models": list(models)}, summary=rows)


# ------------------------------------------------------------------------------------ 6. fairness

def _group_table(title: str, groups: dict[str, np.ndarray], correct: np.ndarray) -> tuple[list[str], dict]:
    rows = [f"| {title} | n | accuracy |", "|---|---|---|"]
    data = {}
    for g, m in groups.items():
        n = int(m.sum())
        acc = float(correct[m].mean()) if n else None
        data[g] = {"n": n, "accuracy": acc}
        rows.append(f"| {g} | {n} | {_pct(acc)} |")
    sizes = [v["n"] for v in data.values() if v["n"]]
    if sizes:
        small = min(data, key=lambda g: data[g]["n"] if data[g]["n"] else 1 << 60)
        accs = [v["accuracy"] for v in data.values() if v["n"]]
        rows.append(f"\nSmallest group: {small} (n = {data[small]['n']}); gap between best and worst group: "
                    f"{100 * (max(accs) - min(accs)):.2f} pp.")
    return rows, data


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:60]


def _group_figure(data: dict[str, dict[str, Any]], title: str, path: Path) -> str:
    """Bar chart of accuracy per group, each bar labelled with the group's size."""
    plt = _plt()
    names = [g for g, v in data.items() if v["n"]]
    accs = [100 * data[g]["accuracy"] for g in names]
    fig, ax = plt.subplots(figsize=(1.2 + 0.8 * len(names), 3.2))
    ax.bar(range(len(names)), accs, color="tab:purple")
    for i, g in enumerate(names):
        ax.text(i, accs[i] + 1, f"n={data[g]['n']}", ha="center", fontsize=7)
    ax.set_xticks(range(len(names)), names, rotation=20, fontsize=8)
    ax.set_ylim(0, 105)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title, fontsize=8)
    return _savefig(fig, path)


def fairness(s: Settings, run_dirs: Sequence[str | Path] = (), shipped: bool = True) -> Path:
    """Experiment 6: per-group accuracy of the shipped models (and/or training runs) on the test
    split of their dataset's cache: UTKFace race × task, gender, age group; FER+ per class."""
    from .data.utkface import UTK_RACES, parse_utk_name
    from .evaluate import predict_arrays, task_metrics
    from .train import load_run

    t0 = time.time()
    device = resolve_device(s.device)
    models: list[tuple[str, Any, Any]] = []
    if shipped:
        from .models.registry import list_classifiers, load_classifier

        for name in list_classifiers():
            net, cfg = load_classifier(name, device=device)
            models.append((f"bundled `{name}`", net, cfg))
    for rd in run_dirs:
        net, cfg, _ = load_run(rd, "best", device=device)
        models.append((f"run `{Path(rd).name}`", net, cfg))
    if not models:
        raise ValueError("no shipped classifier found and no --run given: train and ship the default models "
                         "first (`salface ship`), or pass run folders")
    body: list[str] = []
    payload: dict[str, Any] = {"models": {}}
    summary: list[str] = []
    for label, net, cfg in models:
        is_utk = any(t in cfg.tasks for t in ("age", "gender"))
        cc = open_crop_cache(s.utk_cache if is_utk else s.fer_cache)
        if cc.size != cfg.input_size or cc.color != cfg.color:
            raise ValueError(f"{label} wants {cfg.input_size} px {cfg.color} crops; {cc.root} holds "
                             f"{cc.size} px {cc.color}")
        te = subset_index(cc, {"train": 0, "val": 0, "test": _limit(s.test_limit, None)})
        ensure_saliency(cc, cfg.saliency, s.log, s.progress, device)
        maps = np.asarray(cc.saliency(cfg.saliency)[te]) if cfg.saliency != "none" else None
        tta = bool(cfg.extra.get("tta_flip", False))   # as the model runs in `analyze`
        probs = predict_arrays(net, cfg, np.asarray(cc.crops[te]), maps, tta_flip=tta, device=device)
        body += [f"## {label} ({cfg.backbone}, {cfg.input_size} px {cfg.color}, saliency {cfg.saliency} "
                 f"r = {cfg.ratio}{', flip TTA' if tta else ''})", "",
                 f"Test split of `{cc.root.name}`: {len(te)} faces.", ""]
        entry: dict[str, Any] = {}
        paths = cc.paths
        for t in cfg.tasks:
            if t not in cc.tasks:
                continue
            y = cc.task_labels(t)[te]
            keep = y >= 0
            pred = probs[t].argmax(1)
            correct = (pred == y)
            entry[t] = {"overall": task_metrics(t, y, pred)["accuracy"]}
            if is_utk:
                race = np.array([(parse_utk_name(Path(paths[i]).name) or {}).get("race") for i in te], dtype=object)
                groups = {"race": {UTK_RACES[k]: keep & (race == k) for k in range(len(UTK_RACES))}}
                if "race" in groups and np.any(race == None):  # noqa: E711  (names without a race field)
                    groups["race"]["(unknown)"] = keep & (race == None)  # noqa: E711
                for other in ("gender", "age"):
                    if other in cc.tasks:
                        yo = cc.task_labels(other)[te]
                        groups[other] = {n: keep & (yo == k) for k, n in enumerate(labels_for(other))}
            else:
                groups = {"class": {n: keep & (y == k) for k, n in enumerate(labels_for(t))}}
            entry[t]["groups"] = {}
            body += [f"### {t}: overall {_pct(entry[t]['overall'])}", ""]
            for gname, g in groups.items():
                rows, data = _group_table(f"{t} accuracy by {gname}", g, correct)
                entry[t]["groups"][gname] = data
                body += rows + [""]
                if gname in ("race", "class"):
                    summary += [f"**{label}, {t} by {gname}**", ""] + rows + [""]
                    png = _group_figure(data, f"{label.split('`')[1] if '`' in label else label}: {t} by {gname}",
                                        Path(s.out_dir) / "fairness" / f"{_slug(label)}_{t}_{gname}.png")
                    body += [f"![{t} accuracy by {gname}]({png})", ""]
        payload["models"][label] = entry
    body += ["UTKFace race labels as the file names give them (white, black, asian, indian, others); the "
             "papers report no per-group numbers."]
    return write_experiment("fairness", s, "Experiment 6 — accuracy per group", body, payload, time.time() - t0,
                            {"models": [m[0] for m in models]}, summary=summary)


# ------------------------------------------------------------------------------------ 7. protocols

def _confusion_pct_rows(cm: np.ndarray, labels: Sequence[str], counts: bool, paper_diag: dict | None) -> list[str]:
    rows = ["| true \\ predicted | " + " | ".join(labels) + (" | paper diagonal |" if paper_diag else " |"),
            "|---" * (len(labels) + 1 + (1 if paper_diag else 0)) + "|"]
    for i, lab in enumerate(labels):
        n = cm[i].sum()
        cells = []
        for j in range(len(labels)):
            pct = 100 * cm[i, j] / n if n else 0.0
            c = f"{pct:.1f}" + (f" ({int(cm[i, j])})" if counts else "")
            cells.append(f"**{c}**" if i == j else c)
        extra = [f"{paper_diag.get(lab, '–')}"] if paper_diag else []
        rows.append(f"| {lab} | " + " | ".join(cells + extra) + " |")
    return rows


def _protocol_cache(samples, name: str, s: Settings, size: int, color: str, tasks, detector: str,
                    detector_kwargs: dict | None) -> CropCache:
    from .cache import build_crop_cache

    root = Path(s.cache_dir) / f"{name}-{size}-{color}"
    return build_crop_cache(samples, root, size=size, color=color, tasks=tasks, detector=detector,
                            detector_kwargs=detector_kwargs, progress=s.progress,
                            splits=["train"] * len(samples))


def _train_eval_view(view: CacheView, preset, name: str, s: Settings, seed: int, saliency: str, ratio: float
                     ) -> tuple[dict[str, Any], Path]:
    from .evaluate import predict_arrays, task_metrics
    from .train import load_run, train

    device = resolve_device(s.device)
    h = hashlib.sha256(json.dumps({"preset": preset.to_dict(), "cache": view.meta["key"], "seed": seed,
                                   "saliency": saliency, "ratio": ratio, "max_steps": s.max_steps},
                                  sort_keys=True).encode())
    h.update(np.ascontiguousarray(view.index).tobytes())
    h.update(np.ascontiguousarray(view.split).tobytes())
    run_dir = Path(s.runs_dir) / f"{name}-{h.hexdigest()[:8]}"
    rec_p = run_dir / "eval_test.json"
    if rec_p.exists():
        return json.loads(rec_p.read_text())["metrics"], run_dir
    state = run_dir / "state.json"
    if not (state.exists() and json.loads(state.read_text()).get("finished")):
        train(preset, view, out_dir=run_dir, seed=seed, resume=state.exists(), device=device, saliency=saliency,
              ratio=ratio if saliency != "none" else None, max_steps=s.max_steps, progress=s.progress,
              threads=s.threads, log=s.log)
    model, cfg, _ = load_run(run_dir, "best", device=device)
    te = np.flatnonzero(view.split == 2)
    maps = view.saliency(cfg.saliency)[te] if cfg.saliency != "none" else None
    probs = predict_arrays(model, cfg, view.crops[te], maps, tta_flip=preset.tta_flip, device=device)
    metrics = {}
    for t in cfg.tasks:
        y = view.task_labels(t)[te]
        if (y >= 0).any():
            metrics[t] = task_metrics(t, y, probs[t].argmax(1))
    rec_p.write_text(json.dumps({"metrics": metrics}, indent=1))
    return metrics, run_dir


def adience(s: Settings, root: str | Path, *, preset: str = "saf-bage", size: int | None = None,
            folds: Sequence[int] = (0, 1, 2, 3, 4), detector: str = "yunet", detector_kwargs: dict | None = None,
            val_fraction: float = 0.1) -> Path:
    """Experiment 7a: Adience five-fold, subject-exclusive cross-validation (age and gender heads).

    For test fold k the other folds train; ``val_fraction`` of their subjects (seeded) are held out
    for model selection. Faces are re-detected in Adience's aligned images (whole image as the
    reference box). Folds without labelled images here are skipped and listed."""
    from .data.adience import read_adience
    from .presets import get_preset

    t0 = time.time()
    samples = read_adience(root)
    if not samples:
        raise ValueError(f"{root}: no Adience images found")
    p = get_preset(preset, ("age", "gender"))
    size = size or p.input_size
    cc = _protocol_cache(samples, "adience", s, size, p.color, ("age", "gender"), detector, detector_kwargs)
    fold_of = np.array([sm.meta["fold"] for sm in samples])
    subj = np.array([sm.subject or f"#{i}" for i, sm in enumerate(samples)])
    per_arm: dict[str, dict[int, dict[str, Any]]] = {}
    skipped: list[str] = []
    device = resolve_device(s.device)
    pr = _protocol_preset(p, s, size)
    for sal in ("none", s.saliency):
        ensure_saliency(cc, sal, s.log, s.progress, device)
        arm = "without saliency" if sal == "none" else f"with {sal} (r = {pr.ratio:g})"
        per_arm[arm] = {}
        for k in folds:
            test = np.flatnonzero(fold_of == k)
            train_idx = np.flatnonzero(fold_of != k)
            if len(test) == 0 or len(train_idx) < 2:
                if sal == "none":
                    skipped.append(f"fold {k}: {len(test)} test / {len(train_idx)} train images here")
                continue
            subjects = np.unique(subj[train_idx])
            rng = np.random.default_rng(k)
            n_val = max(1, int(round(val_fraction * len(subjects))))
            val_subj = set(rng.choice(subjects, size=min(n_val, len(subjects) - 1), replace=False))
            split = np.full(len(samples), -1, np.int8)
            split[train_idx] = 0
            split[[i for i in train_idx if subj[i] in val_subj]] = 1
            split[test] = 2
            idx = np.flatnonzero(split >= 0)
            view = cache_view(cc, idx, split[idx])
            per_arm[arm][k], _ = _train_eval_view(view, pr, f"adience-{pr.name}-{size}-{sal}-fold{k}", s, 0,
                                                   sal, pr.ratio)
    if not any(per_arm.values()):
        raise ValueError(f"{root}: no fold could be run ({'; '.join(skipped)})")
    body: list[str] = []
    payload: dict[str, Any] = {"arms": {}}
    out = Path(s.out_dir) / "adience"
    for arm, per_fold in per_arm.items():
        with_sal = arm.startswith("with ")
        b, pl = _protocol_tables(per_fold, ("age", "gender"), "fold",
                                 PAPER["adience"] if with_sal else PAPER["adience-without"], out,
                                 "with" if with_sal else "without")
        body += [f"## {arm}", ""] + b + [""]
        payload["arms"][arm] = pl
    body += ["The paper's Table 4 (age confusion with saliency) diagonal is beside ours in the last column.",
             f"Folds skipped (not enough images here): {'; '.join(skipped) or 'none'}.",
             f"Recipe: preset `{p.name}` at {size} px ({'ImageNet' if pr.pretrained else 'from scratch'}); "
             f"{DIFFERENT_DATA.replace('**different data**: ', '')}; the same protocol"
             + ("." if len(samples) > 15000 else f", but only {len(samples)} images here (not the full set).")]
    return write_experiment("adience", s, "Experiment 7a — Adience five-fold protocol", body, payload,
                            time.time() - t0, {"images": len(samples), "preset": p.name, "size": size},
                            summary=body[:16])


def _protocol_tables(per_run: dict[Any, dict[str, Any]], tasks, unit: str, paper: dict,
                     out: Path | None = None, stem: str = "") -> tuple[list[str], dict]:
    """Accuracy per fold/arm with mean ± std, and confusion matrices summed over them in the
    papers' layout (row %, counts in brackets; the paper's diagonal beside), + PNG heat maps."""
    from .evaluate import mean_std, plot_confusion

    body = [f"| task | accuracy per {unit} | mean ± std over {unit}s | 1-off (age) | paper |", "|---|---|---|---|---|"]
    payload: dict[str, Any] = {"per_" + unit: per_run, "summary": {}}
    for t in tasks:
        accs = {k: m[t]["accuracy"] for k, m in per_run.items() if t in m}
        if not accs:
            continue
        one = [m[t]["one_off_accuracy"] for m in per_run.values() if t in m and "one_off_accuracy" in m[t]]
        mu, sd = mean_std(list(accs.values()))
        payload["summary"][t] = {"mean": mu, "std": sd, "n": len(accs)}
        body.append(f"| {t} | " + ", ".join(f"{k}: {_pct(a)}" for k, a in accs.items()) + f" | {_pm(list(accs.values()))} | "
                    + (_pm(one) if one else "–") + f" | {paper.get(t, '–')} |")
    for t in tasks:
        cms = [np.asarray(m[t]["confusion_matrix"]) for m in per_run.values() if t in m]
        if not cms:
            continue
        cm = np.sum(cms, axis=0)
        payload["summary"].setdefault(t, {})["confusion_matrix"] = cm.tolist()
        diag = paper.get("age_confusion_diagonal") if t == "age" else paper.get("per_class")
        body += ["", f"**{t}: confusion matrix summed over {unit}s (row %, counts in brackets)**", ""]
        body += _confusion_pct_rows(cm, labels_for(t), True, diag)
        if out is not None:
            png = plot_confusion(cm, labels_for(t), out / f"confusion_{t}{'_' + stem if stem else ''}.png",
                                 title=f"{t} ({stem or unit})")
            body += ["", f"![{t} confusion matrix]({png.name})"]
    return body, payload


def affectnet(s: Settings, training_csv: str | Path, validation_csv: str | Path, images_root: str | Path, *,
              preset: str = "saf-bage", size: int | None = None, per_class: int = 500,
              detector: str = "yunet", detector_kwargs: dict | None = None) -> Path:
    """Experiment 7b: AffectNet, SAF-BAGE's protocol (balanced test of ``per_class`` per class from
    the official validation set; the training set split 80/20 into train/val), expression head."""
    from .data.affectnet import affectnet_saf_bage_splits, read_affectnet
    from .presets import get_preset

    t0 = time.time()
    tr = read_affectnet(training_csv, images_root, require_images=True)
    va = read_affectnet(validation_csv, images_root, require_images=True)
    sp = affectnet_saf_bage_splits(tr, va, per_class=per_class)
    samples = sp["train"] + sp["val"] + sp["test"]
    names = ["train"] * len(sp["train"]) + ["val"] * len(sp["val"]) + ["test"] * len(sp["test"])
    p = get_preset(preset, ("expression",))
    size = size or p.input_size
    cc = _protocol_cache(samples, "affectnet", s, size, p.color, ("expression",), detector, detector_kwargs)
    split = np.array([{"train": 0, "val": 1, "test": 2}[n] for n in names], np.int8)
    view = cache_view(cc, np.arange(len(samples)), split)
    body: list[str] = []
    payload: dict[str, Any] = {"arms": {}}
    pr = _protocol_preset(p, s, size)
    for sal in ("none", s.saliency):
        ensure_saliency(cc, sal, s.log, s.progress, resolve_device(s.device))
        arm = "without saliency" if sal == "none" else f"with {sal} (r = {pr.ratio:g})"
        metrics, _ = _train_eval_view(view, pr, f"affectnet-{pr.name}-{size}-{sal}", s, 0, sal, pr.ratio)
        b, pl = _protocol_tables({"test": metrics}, ("expression",), "run",
                                 PAPER["affectnet"] if sal != "none" else PAPER["affectnet-without"],
                                 Path(s.out_dir) / "affectnet", "with" if sal != "none" else "without")
        body += [f"## {arm}", ""] + b + [""]
        payload["arms"][arm] = pl
    body += ["", f"Test: {len(sp['test'])} images ({per_class} per class), train {len(sp['train'])}, val "
             f"{len(sp['val'])}. The paper's Table 5 diagonal (with saliency) is in the last column. Recipe: preset "
             f"`{p.name}` at {size} px ({'ImageNet' if pr.pretrained else 'from scratch'})."]
    return write_experiment("affectnet", s, "Experiment 7b — AffectNet (SAF-BAGE balanced test)", body, payload,
                            time.time() - t0, {"per_class": per_class, "preset": p.name, "size": size},
                            summary=body[:6])


__all__ = ["Settings", "RunSpec", "RunResult", "run_one", "cache_view", "subset_index", "saliency_onoff",
           "ratio_sweep", "saliency_source", "backbones", "cam_experiment", "fairness", "adience", "affectnet",
           "heads", "train_runs", "file_lock", "onoff_specs", "ratio_specs", "source_specs", "backbone_specs",
           "heads_specs", "cam_specs", "EXPERIMENTS", "PAPER", "update_index"]
