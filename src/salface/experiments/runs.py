"""Training runs of the experiments.

* A run is described by a :class:`RunSpec` (cache, tasks, recipe, backbone, saliency, ratio, seed,
  epochs, subset sizes); its folder under ``runs_dir`` is named by the spec and a hash of it, so
  an identical run needed by two experiments is trained once (e.g. MobileNetV2 + ML-Net at r = 0.3
  on gender, seed 0, serves the ratio sweep, the saliency-source and the backbone experiments).
* A finished run (``eval_test.json`` present) is skipped, an interrupted one is resumed from its
  last epoch (:func:`salface.training.train.train` with ``resume=True``): every command is resumable; a
  file lock keeps two processes from training the same run.
* Each run is evaluated once on the **same** test images (subsets are drawn with a fixed seed 0,
  independent of the run's seed), and its per-image predictions are kept
  (``test_predictions.npz``) for the paired tests of :mod:`salface.evaluation.stats`.
* :func:`train_runs` trains many runs, ``jobs`` at a time, each in its own process.

Subsets: ``train_limit`` / ``val_limit`` / ``test_limit`` draw that many samples of each split
(seed 0, sorted) from the crop cache; ``None`` keeps the whole split. The cached crops (and
saliency maps) of a subset are read into memory once per run.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..training.cache import CropCache, open_crop_cache
from ..backends.torch import resolve_device
from ..utils import atomic_path, atomic_write_json, file_lock, git_commit, machine
from .settings import DATASET_DEFAULTS, Settings, _limit
from .views import cache_view, ensure_saliency, subset_index


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
    from ..models.backbones import _have_weights

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
    from ..training.presets import get_preset

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

    from ..training.scoring import predict_arrays, task_metrics
    from ..training.train import load_run, train

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
    # predictions first, the record last: a run counts as finished only when both are whole
    with atomic_path(pred_p, suffix=".npz") as tmp:
        np.savez(tmp, index=view.index[te], **{f"true_{t}": y_true[t] for t in spec.tasks},
                 **{f"pred_{t}": y_pred[t] for t in spec.tasks})
    atomic_write_json(rec_p, {"spec": spec.to_dict(), "metrics": metrics, "history": history, "info": info})
    return RunResult(spec, run_dir, metrics, view.index[te], y_true, y_pred, history, info)


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
