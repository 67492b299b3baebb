"""``salface train``: train a classifier from a crop cache with a named preset.

What happens, and the choices made:

* Data: the crop cache (:mod:`salface.cache`) is read into memory once; saliency maps (when
  ``saliency != "none"``) come from the matching saliency cache. Every batch is augmented on the
  uint8 crops and their maps *together* (one affine warp per sample: flip, rotation, shift, zoom;
  replicate borders) and then goes through :func:`salface.models.preprocess.to_input_tensor`, the
  same function inference uses (reweighting at ``ratio`` happens there, on the fly).
* Loss: the sum over the model's heads of cross-entropy (samples whose label is missing, −1, are
  ignored per head), optional label smoothing and inverse-frequency class weights.
* Learning rate: per-step schedule (linear warm-up, then cosine to 0, step decay or constant).
* Model selection on the **val** split only: after each epoch the val accuracy of every head is
  measured; the selection score is their mean, and ``best.safetensors`` keeps the best epoch.
  The test split is never looked at here.
* Checkpoints every epoch in ``out_dir``: ``last.safetensors`` (weights), ``optimizer.pt``
  (optimizer state, ``torch.save``; the run folder is git-ignored), ``state.json`` (epoch, best
  score), ``metrics.csv`` / ``metrics.json`` (per-epoch train loss and val accuracies),
  ``config.json`` (the preset + classifier config). ``resume=True`` continues from the last
  finished epoch and gives the same result as an uninterrupted run (per-epoch seeding).
* "Wild" levers (issue 12; each a preset field, see :mod:`salface.augment` and
  :mod:`salface.sampling`): ``augment.wild`` adds photo-like damage after the warp (the cached
  saliency map follows the warp and is kept for photometric damage); ``balance`` draws each
  epoch with a seeded WeightedRandomSampler over label strata (with replacement);
  ``age_loss="ordinal"`` trains the age head on Gaussian label distributions; ``ema_decay`` keeps
  an EMA of the weights, which is what val measures and ``best.safetensors`` holds
  (``last.safetensors`` + ``ema.safetensors`` + ``optimizer.pt`` let ``--resume`` continue);
  ``age_years`` adds a training-only head on the age in years (UTKFace file names;
  :class:`salface.training.sampling.AgeYearsLoss`) beside the group head, on the same features;
  the saved network has no trace of it (its weights go to ``aux_age_years.safetensors`` for
  ``--resume`` only).
* Reproducibility: ``seed`` seeds the shuffling, augmentation and dropout of each epoch as
  ``seed * 1000 + epoch``; torch uses all cores; channels_last memory format.
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np
import torch
from torch import nn

from .cache import CropCache, open_crop_cache
from .distributed import setup_distributed
from .scoring import evaluate_arrays
from ..labels import labels_for
from ..utils import atomic_write_json
from ..models.backbones import build_classifier, freeze_first, set_frozen_eval
from ..models.config import ClassifierConfig
from .augment import (BackgroundBank, context_paths, degrade_batch, occlude_part, paste_context,
                      replicated_margin)
from .presets import Augment, Preset, get_preset
from .sampling import (AgeYearsHead, AgeYearsLoss, ModelEMA, OrdinalLoss, balanced_order, cache_strata,
                       expected_years, utkface_age_years, within_stratum_weights)


@dataclass
class TrainResult:
    out_dir: Path
    best_epoch: int
    best_score: float
    history: list[dict[str, Any]]
    config: ClassifierConfig


def classifier_config(preset: Preset, cache: CropCache, *, name: str, saliency: str, ratio: float
                      ) -> ClassifierConfig:
    if cache.size != preset.input_size:
        raise ValueError(f"preset {preset.name!r} wants {preset.input_size} px input, the cache "
                         f"{cache.root} holds {cache.size} px crops; build a cache at that size")
    if cache.color != preset.color:
        raise ValueError(f"preset {preset.name!r} wants color={preset.color!r}, the cache "
                         f"{cache.root} holds {cache.color!r} crops")
    missing = [t for t in preset.tasks if t not in cache.tasks]
    if missing:
        raise ValueError(f"the cache {cache.root} has no labels for {missing}")
    crop_mode = str(cache.meta.get("crop_mode", "margin"))
    if crop_mode != preset.crop_mode:
        raise ValueError(f"preset {preset.name!r} wants {preset.crop_mode!r} crops, the cache {cache.root} "
                         f"holds {crop_mode!r} crops (salface cache crops --crop-mode)")
    from ..models.backbones import input_norm
    mean, std = input_norm(preset.backbone)
    return ClassifierConfig(mean=mean, std=std, crop_mode=crop_mode,
        name=name, backbone=preset.backbone, tasks=preset.tasks, input_size=preset.input_size,
        color=preset.color, margin=float(cache.meta["margin"]), align=bool(cache.meta.get("align", False)),
        saliency=saliency, ratio=ratio if saliency != "none" else 0.0, dropout=preset.dropout,
        detector=str(cache.meta["detector"]),
        extra={"preset": preset.name, "tta_flip": preset.tta_flip})


# ------------------------------------------------------------------------------------ augmentation

def augment_batch(crops: np.ndarray, maps: np.ndarray | None, aug: Augment, rng: np.random.Generator
                  ) -> tuple[np.ndarray, np.ndarray | None]:
    """Apply one random affine warp (flip, rotation, shift, zoom) per sample to crops and maps."""
    n, s = crops.shape[0], crops.shape[1]
    out = np.empty_like(crops)
    mout = np.empty_like(maps) if maps is not None else None
    c = (s - 1) / 2.0
    for i in range(n):
        flip = aug.flip and rng.random() < 0.5
        ang = rng.uniform(-aug.rotate, aug.rotate) if aug.rotate else 0.0
        sc = 1.0 + (rng.uniform(-aug.scale, aug.scale) if aug.scale else 0.0)
        tx, ty = ((rng.uniform(-aug.shift, aug.shift, size=2) * s) if aug.shift else (0.0, 0.0))
        if ang == 0.0 and sc == 1.0 and tx == 0.0 and ty == 0.0:
            img = crops[i]
            out[i] = img[:, ::-1] if flip else img
            if mout is not None:
                mout[i] = maps[i][:, ::-1] if flip else maps[i]
            continue
        m = cv2.getRotationMatrix2D((c, c), ang, sc)
        m[:, 2] += (tx, ty)
        if flip:  # mirror after the warp: x → (s−1) − x
            m = np.array([[-1.0, 0.0, s - 1.0], [0.0, 1.0, 0.0]]) @ np.vstack([m, [0, 0, 1]])
        out[i] = cv2.warpAffine(crops[i], m, (s, s), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        if mout is not None:
            mout[i] = cv2.warpAffine(maps[i], m, (s, s), flags=cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_REPLICATE)
    return out, mout


# ------------------------------------------------------------------------------------ schedule

def lr_factor(preset: Preset, epoch_f: float) -> float:
    """Learning-rate multiplier at fractional epoch ``epoch_f`` (0-based)."""
    if preset.warmup_epochs and epoch_f < preset.warmup_epochs:
        return max(1e-3, epoch_f / preset.warmup_epochs)
    if preset.schedule == "cosine":
        span = max(1e-9, preset.epochs - preset.warmup_epochs)
        t = min(1.0, (epoch_f - preset.warmup_epochs) / span)
        return 0.5 * (1.0 + math.cos(math.pi * t))
    if preset.schedule == "step":
        e = int(epoch_f)
        k = sum(1 for m in preset.milestones if e >= m)
        if preset.step_every and preset.milestones and e >= preset.milestones[-1]:
            k += (e - preset.milestones[-1]) // preset.step_every
        return preset.gamma ** k
    if preset.schedule == "constant":
        return 1.0
    raise ValueError(f"unknown schedule {preset.schedule!r}")


def _optimizer(preset: Preset, params) -> torch.optim.Optimizer:
    if preset.optimizer == "sgd":
        return torch.optim.SGD(params, lr=preset.lr, momentum=preset.momentum, weight_decay=preset.weight_decay)
    if preset.optimizer == "adam":
        return torch.optim.Adam(params, lr=preset.lr, weight_decay=preset.weight_decay)
    if preset.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=preset.lr, weight_decay=preset.weight_decay)
    raise ValueError(f"unknown optimizer {preset.optimizer!r}")


def class_weights(labels: np.ndarray, n_classes: int) -> torch.Tensor:
    """Inverse-frequency weights normalised to mean 1 over present classes (absent classes: 0)."""
    counts = np.bincount(labels[labels >= 0], minlength=n_classes).astype(np.float64)
    w = np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / max(1, (counts > 0).sum()), 0.0)
    return torch.tensor(w, dtype=torch.float32)


# ------------------------------------------------------------------------------------ checkpoints

def save_weights(model: nn.Module, path: Path, config: ClassifierConfig) -> None:
    from safetensors.torch import save_file

    sd = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tmp = path.with_suffix(".tmp")
    save_file(sd, str(tmp), metadata={"config": json.dumps(config.to_dict())})
    tmp.replace(path)


def load_weights(model: nn.Module, path: Path) -> None:
    from safetensors.torch import load_file

    model.load_state_dict(load_file(str(path)))


def resolve_init(preset: Preset) -> tuple[Path, str] | None:
    """The weights file a preset starts from (``preset.init``) and its SHA-256, or ``None``.

    ``bundled:NAME`` is a shipped model (checksum-checked against the manifest); otherwise a
    ``.safetensors`` file or a run folder (its ``best.safetensors``). When the preset pins
    ``init_sha256`` the file must have it: a recipe written for one shipped model does not
    silently start from its successor."""
    if not preset.init:
        return None
    from ..hub import bundled_model_path, sha256_file

    if preset.init.startswith("bundled:"):
        path = bundled_model_path(preset.init.split(":", 1)[1])
    else:
        path = Path(preset.init)
        if path.is_dir():
            path = path / "best.safetensors"
        if not path.is_file():
            raise FileNotFoundError(f"preset {preset.name}: init weights {path} do not exist")
    sha = sha256_file(path)
    if preset.init_sha256 and sha != preset.init_sha256:
        raise ValueError(
            f"preset {preset.name} starts from weights with sha256 {preset.init_sha256}, but {path} "
            f"has {sha} (the shipped model was replaced since); restore that file from git history "
            f"and pass it with a preset whose init is its path")
    return path, sha


def load_run(run_dir: str | Path, which: str = "best", device: str = "cpu"
             ) -> tuple[nn.Module, ClassifierConfig, Preset]:
    """Model, classifier config and preset of a training run folder (``best`` or ``last`` weights)."""
    run = Path(run_dir)
    cfgp = run / "config.json"
    if not cfgp.exists():
        raise FileNotFoundError(f"{run} is not a training run (no config.json)")
    d = json.loads(cfgp.read_text())
    config = ClassifierConfig.from_dict(d["classifier"])
    preset = Preset.from_dict(d["preset"])
    model = build_classifier(config, pretrained=False)
    wp = run / f"{which}.safetensors"
    if not wp.exists():
        raise FileNotFoundError(f"no {which} weights in {run}")
    load_weights(model, wp)
    return model.to(device).eval(), config, preset


# ------------------------------------------------------------------------------------ training

class _WithAux(nn.Module):
    """The classifier plus a training-only head on its shared features: ``(logits, aux logits)``."""

    def __init__(self, model: nn.Module, aux: nn.Module) -> None:
        super().__init__()
        self.model, self.aux = model, aux

    def forward(self, x: torch.Tensor):
        emb = self.model.embed(x)
        return self.model.heads(emb), self.aux(emb)


def _embed_features(model: nn.Module) -> int:
    """Length of the feature vector a classifier's heads read."""
    heads = getattr(getattr(model, "heads", None), "heads", None)
    if heads is None or not hasattr(model, "embed"):
        raise ValueError("an auxiliary head needs a single network with shared heads (not an ensemble)")
    return int(next(iter(heads.values())).in_features)


def train(preset_or_name: Preset | str, cache: CropCache | str | Path, *, out_dir: str | Path,
          epochs: int | None = None, seed: int = 0, resume: bool = False, device: str = "cpu",
          saliency: str | None = None, ratio: float | None = None, name: str | None = None,
          batch_size: int | None = None, lr: float | None = None, max_steps: int | None = None,
          max_eval: int | None = None, threads: int | None = None, progress: bool = True,
          pretrained: bool | None = None, stop_after: int | None = None,
          tasks: tuple[str, ...] | None = None,
          log: Callable[[str], None] = print) -> TrainResult:
    """Train ``preset`` on ``cache``'s train split, selecting the epoch on its val split.

    ``saliency``/``ratio`` override the preset's (``"none"`` trains without reweighting).
    ``max_steps`` (batches per epoch) and ``max_eval`` (val samples) shrink a run for tests.
    ``stop_after`` ends the call after that many epochs in all (the schedule still spans
    ``epochs``), leaving a run to continue later with ``resume=True``. ``tasks`` trains only
    some of the cache's tasks (a preset family name then resolves to the recipe with fewer heads).
    """
    cc = cache if isinstance(cache, CropCache) else open_crop_cache(cache)
    if tasks is not None:
        missing = [t for t in tasks if t not in cc.tasks]
        if missing or not tasks:
            raise ValueError(f"tasks {list(tasks)}: the cache {cc.root} has labels for {list(cc.tasks)}")
    preset = (get_preset(preset_or_name, tuple(tasks or cc.tasks)) if isinstance(preset_or_name, str)
              else preset_or_name)
    preset = preset.with_overrides(epochs=epochs, batch_size=batch_size, lr=lr, saliency=saliency,
                                   ratio=ratio, pretrained=pretrained)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    name = name or out.name
    dctx = setup_distributed(device)  # under torchrun: this rank's share (salface.distributed)
    device, log, progress = dctx.device, dctx.log(log), progress and dctx.is_main
    config = classifier_config(preset, cc, name=name, saliency=preset.saliency, ratio=preset.ratio)
    torch.set_num_threads(dctx.threads(threads))

    crops = np.asarray(cc.crops)
    maps = np.asarray(cc.saliency(preset.saliency)) if preset.saliency != "none" else None
    labels = {t: cc.task_labels(t) for t in preset.tasks}
    tr = cc.indices("train")
    tr = tr[np.any(np.stack([labels[t][tr] >= 0 for t in preset.tasks]), axis=0)]
    va = cc.indices("val")
    if len(tr) == 0 or len(va) == 0:
        raise ValueError(f"cache {cc.root} needs non-empty train and val splits "
                         f"(train {len(tr)}, val {len(va)})")
    if max_eval:
        va = va[:max_eval]

    init = resolve_init(preset)
    cfg_payload = {"preset": preset.to_dict(), "classifier": config.to_dict(), "seed": seed,
                   "cache": str(cc.root), "cache_key": cc.meta["key"],
                   "n_train": int(len(tr)), "n_val": int(len(va))}
    if init is not None:
        cfg_payload["init"] = {"file": str(init[0]), "sha256": init[1]}
    state_p = out / "state.json"
    if resume and state_p.exists():
        old = json.loads((out / "config.json").read_text())
        # runs written before a field existed compare with its default
        old["preset"] = Preset.from_dict(old["preset"]).to_dict()
        old["classifier"] = ClassifierConfig.from_dict(old["classifier"]).to_dict()
        for k in ("preset", "classifier", "seed", "cache_key"):
            if old.get(k) != cfg_payload[k]:
                raise ValueError(f"cannot resume {out}: its {k} differs from this run's")
    elif state_p.exists() and not resume:
        raise FileExistsError(f"{out} already holds a run; pass resume=True (--resume) or use another folder")
    if dctx.is_main:
        atomic_write_json(out / "config.json", cfg_payload)

    torch.manual_seed(seed)
    model = build_classifier(config, pretrained=preset.pretrained and init is None)
    if init is not None:
        try:
            load_weights(model, init[0])
        except RuntimeError as e:  # shapes or keys of another architecture
            raise ValueError(f"init weights {init[0]} do not fit preset {preset.name}'s network "
                             f"({config.backbone}, {config.input_size} px, tasks {list(preset.tasks)}): {e}") from None
        log(f"starting from {init[0]} (sha256 {init[1][:12]}…)")
    if preset.freeze:
        freeze_first(model, preset.freeze)
    model = model.to(device).to(memory_format=torch.channels_last)
    years = aux = None
    if preset.age_years > 0:  # a training-only head on the age in years (never saved with the model)
        years = np.array([utkface_age_years(p) for p in cc.paths], np.int64)
        if (years[tr] >= 0).sum() == 0:
            raise ValueError(f"preset {preset.name}: age_years needs UTKFace file names ([age]_…); "
                             f"{cc.root} has none")
        aux = AgeYearsHead(_embed_features(model)).to(device)
        aux_loss = AgeYearsLoss(preset.age_years_sigma)
        log(f"auxiliary age-in-years head, weight {preset.age_years}, sigma {preset.age_years_sigma} "
            f"years, {(years[tr] >= 0).sum()} training ages")
    train_net = _WithAux(model, aux) if aux is not None else model
    net = dctx.wrap(train_net, find_unused=len(preset.tasks) > 1)  # DDP under torchrun, else model
    params = [p for p in train_net.parameters() if p.requires_grad]
    opt = _optimizer(preset, params)
    if preset.gender_within and "gender" not in preset.tasks:
        raise ValueError(f"preset {preset.name}: gender_within needs the gender task")
    weighted = {"gender"} if preset.gender_within else set()  # tasks with per-sample loss weights
    losses = {t: nn.CrossEntropyLoss(
        weight=(class_weights(labels[t][tr], len(labels_for(t))).to(device) if preset.class_weighted else None),
        ignore_index=-1, label_smoothing=preset.label_smoothing,
        reduction="none" if t in weighted else "mean") for t in preset.tasks}
    if preset.age_loss == "ordinal" and "age" in preset.tasks:
        losses["age"] = OrdinalLoss(len(labels_for("age")), preset.ordinal_sigma, preset.ordinal_penalty)
    elif preset.age_loss != "ce":
        raise ValueError(f"unknown age_loss {preset.age_loss!r}; expected 'ce' or 'ordinal'")
    ema = ModelEMA(model, preset.ema_decay) if preset.ema_decay else None
    strata = cache_strata(cc, preset.balance, tr)[0] if preset.balance else None
    loss_w: dict[str, np.ndarray] = {}  # per-sample loss weights of a task, indexed like the cache
    if preset.gender_within:
        w = np.zeros(len(labels["gender"]), np.float32)
        w[tr] = within_stratum_weights(labels["gender"][tr], cache_strata(cc, preset.gender_within, tr)[0])
        loss_w["gender"] = w
        log(f"gender loss weighted within {' × '.join(preset.gender_within)}: weights "
            f"{w[tr][w[tr] > 0].min():.2f}–{w[tr].max():.2f}")
    face_w = (np.asarray(cc.boxes[:, 2] - cc.boxes[:, 0], np.float32) if preset.augment.wild else None)
    bank, rects = None, None
    lms = np.asarray(cc.landmarks, np.float32) if preset.augment.parts > 0 else None
    if preset.augment.context > 0:
        if not preset.augment.context_source:
            raise ValueError(f"preset {preset.name}: augment.context needs augment.context_source (a folder of photos)")
        bank = BackgroundBank(context_paths(preset.augment.context_source), gray=cc.meta.get("color") == "gray", log=log)
        rects = {int(i): replicated_margin(crops[i]) for i in tr}
        padded = np.mean([r != (0, 0, crops.shape[2], crops.shape[1]) for r in rects.values()])
        log(f"context: {len(bank)} scene photos; {100 * padded:.1f} % of the training crops are padded")

    soft = {t: soft_target_matrix(cc, t, labels[t]) for t in preset.tasks} if preset.soft_targets else {}
    soft = {t: m for t, m in soft.items() if m is not None}
    if preset.soft_targets and not soft:
        log(f"note: preset {preset.name} asks for soft targets but {cc.root} has none; "
            f"training on hard labels (write them with `salface cache targets`)")

    history: list[dict[str, Any]] = []
    start, best_score, best_epoch = 0, -1.0, -1
    if resume and state_p.exists():
        st = json.loads(state_p.read_text())
        start, best_score, best_epoch = int(st["epoch"]), float(st["best_score"]), int(st["best_epoch"])
        load_weights(model, out / "last.safetensors")
        if aux is not None:
            from safetensors.torch import load_file
            aux.load_state_dict(load_file(str(out / "aux_age_years.safetensors")))
        opt.load_state_dict(torch.load(out / "optimizer.pt", map_location=device, weights_only=True))
        history = json.loads((out / "metrics.json").read_text())[:start]
        if ema is not None:
            from safetensors.torch import load_file
            ema.load(load_file(str(out / "ema.safetensors")), int(st.get("ema_updates", 0)))
        log(f"resuming {out} after epoch {start} (best val {best_score:.4f} at epoch {best_epoch})")

    steps_per_epoch = int(math.ceil(len(tr) / preset.batch_size))
    if max_steps:
        steps_per_epoch = min(steps_per_epoch, max_steps)
    val_crops = crops[va]
    val_maps = maps[va] if maps is not None else None
    val_labels = {t: labels[t][va] for t in preset.tasks}
    end = preset.epochs if stop_after is None else min(preset.epochs, stop_after)
    for epoch in range(start, end):
        t0 = time.time()
        rng = np.random.default_rng(seed * 1000 + epoch)
        torch.manual_seed(seed * 1000 + epoch)
        order = (rng.permutation(tr) if strata is None
                 else balanced_order(tr, strata, preset.balance_power, seed * 1000 + epoch))
        order = dctx.trim(order, preset.batch_size)
        model.train()
        set_frozen_eval(model)
        tot, cnt, aux_err, aux_n = 0.0, 0, 0.0, 0
        correct = {t: 0 for t in preset.tasks}
        seen = {t: 0 for t in preset.tasks}
        bar = range(steps_per_epoch)
        if progress:
            from tqdm import tqdm
            bar = tqdm(bar, desc=f"{name} epoch {epoch + 1}/{preset.epochs}", unit="batch", mininterval=10)
        for step in bar:
            idx = np.sort(order[step * preset.batch_size:(step + 1) * preset.batch_size])
            if len(idx) == 0:
                break
            bc = crops[idx]
            if bank is not None:
                hit = rng.random(len(idx)) < preset.augment.context
                bc = np.stack([paste_context(c, bank, rng, rects[int(i)]) if h else c
                               for c, i, h in zip(bc, idx, hit)])
            if lms is not None:
                hit = rng.random(len(idx)) < preset.augment.parts
                bc = np.stack([occlude_part(c, lms[i], rng) if h else c for c, i, h in zip(bc, idx, hit)])
            bc, bm = augment_batch(bc, maps[idx] if maps is not None else None, preset.augment, rng)
            if preset.augment.wild:
                bc = degrade_batch(bc, rng, face_widths=face_w[idx])
            idx, bc, bm = dctx.shard(idx, bc, bm)  # this rank's share of the augmented batch
            x = _to_input(bc, bm, config, device)
            f = lr_factor(preset, epoch + step / steps_per_epoch)
            for g in opt.param_groups:
                g["lr"] = preset.lr * f
            outs = net(x)
            loss = torch.zeros((), device=device)
            if aux is not None:
                outs, aux_logits = outs
                y_years = torch.from_numpy(years[idx]).to(device)
                loss = loss + preset.age_years * aux_loss(aux_logits, y_years)
                with torch.no_grad():
                    vy = y_years >= 0
                    aux_err += float((expected_years(aux_logits[vy]) - y_years[vy].float()).abs().sum())
                    aux_n += int(vy.sum())
            for t in preset.tasks:
                y = torch.from_numpy(labels[t][idx]).to(device)
                v = y >= 0
                if v.any():
                    if t in soft:  # distributions as targets (rows of unlabelled samples dropped)
                        target = torch.from_numpy(soft[t][idx]).to(device)
                        loss = loss + losses[t](outs[t][v], target[v])
                    elif t in loss_w:  # per-sample weights: a weighted mean over the labelled rows
                        w = torch.from_numpy(loss_w[t][idx]).to(device)[v]
                        loss = loss + (losses[t](outs[t][v], y[v]) * w).sum() / w.sum().clamp_min(1e-8)
                    else:
                        loss = loss + losses[t](outs[t], y)
                    with torch.no_grad():
                        correct[t] += int((outs[t].argmax(1)[v] == y[v]).sum())
                        seen[t] += int(v.sum())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if ema is not None:
                ema.update(model)
            tot += loss.item() * len(idx)
            cnt += len(idx)
            if progress and hasattr(bar, "set_postfix"):
                bar.set_postfix(loss=f"{tot / cnt:.4f}", lr=f"{preset.lr * f:.2e}", refresh=False)
        tot, cnt, correct, seen = dctx.sum(tot, cnt, correct, seen)  # over the ranks
        train_time = time.time() - t0
        val = dctx.on_main(evaluate_arrays, ema.module if ema is not None else model, config,
                           val_crops, val_maps, val_labels, device=device)
        score = float(np.mean([val[t]["accuracy"] for t in preset.tasks if t in val]))
        if ema is not None:  # the raw weights' score, for the record (selection uses the EMA's)
            raw = dctx.on_main(evaluate_arrays, model, config, val_crops, val_maps, val_labels,
                               device=device)
            raw_score = float(np.mean([raw[t]["accuracy"] for t in preset.tasks if t in raw]))
        row: dict[str, Any] = {"epoch": epoch + 1, "train_loss": tot / max(cnt, 1),
                               "lr_end": preset.lr * lr_factor(preset, epoch + 1.0),
                               "train_seconds": round(train_time, 1),
                               "eval_seconds": round(time.time() - t0 - train_time, 1)}
        for t in preset.tasks:
            row[f"train_{t}_accuracy"] = correct[t] / max(1, seen[t])
            if t in val:
                row[f"val_{t}_accuracy"] = val[t]["accuracy"]
                if "one_off_accuracy" in val[t]:
                    row[f"val_{t}_one_off"] = val[t]["one_off_accuracy"]
        if aux is not None:
            row["train_age_years_mae"] = aux_err / max(1, aux_n)
        row["val_score"] = score
        if ema is not None:
            row["raw_val_score"] = raw_score
        history.append(row)
        improved = score > best_score
        if improved:
            best_score, best_epoch = score, epoch + 1
        if not dctx.is_main:  # rank 0 alone writes the run folder
            continue
        save_weights(model, out / "last.safetensors", config)
        if aux is not None:  # for --resume only; not part of the model
            from safetensors.torch import save_file
            save_file({k: v.detach().cpu().contiguous() for k, v in aux.state_dict().items()},
                      str(out / "aux_age_years.safetensors"))
        if ema is not None:
            save_weights(ema.module, out / "ema.safetensors", config)
        if improved:
            save_weights(ema.module if ema is not None else model, out / "best.safetensors", config)
        torch.save(opt.state_dict(), out / "optimizer.pt.tmp")
        os.replace(out / "optimizer.pt.tmp", out / "optimizer.pt")
        _write_history(out, history)
        atomic_write_json(state_p, {"epoch": epoch + 1, "best_score": best_score, "best_epoch": best_epoch,
                               "epochs": preset.epochs, "finished": epoch + 1 == preset.epochs,
                               "ema_updates": ema.updates if ema is not None else 0})
        log(f"{name} epoch {epoch + 1}/{preset.epochs}: loss {row['train_loss']:.4f}, "
            + ", ".join(f"val {t} {row.get(f'val_{t}_accuracy', float('nan')):.4f}" for t in preset.tasks)
            + f" ({train_time:.0f}s train)")
    return TrainResult(out, best_epoch, best_score, history, config)


def soft_target_matrix(cache: CropCache, task: str, labels: np.ndarray) -> np.ndarray | None:
    """Per-sample training targets for ``task`` from the cache's label distributions: the
    distribution where the cache has one, a one-hot of the hard label where it has none (all-zero
    row), ``None`` when the cache has no distributions for the task."""
    dist = cache.soft_targets(task)
    if dist is None:
        return None
    out = np.array(dist, np.float32, copy=True)
    empty = (out.sum(1) <= 0) & (labels >= 0)
    out[np.flatnonzero(empty), labels[empty]] = 1.0
    return out


def _to_input(crops, maps, config, device):
    from ..models.preprocess import to_input_tensor
    return to_input_tensor(crops, maps, config, device)


def _write_history(out: Path, history: list[dict[str, Any]]) -> None:
    atomic_write_json(out / "metrics.json", history)
    keys: list[str] = []
    for h in history:
        keys += [k for k in h if k not in keys]
    tmp = out / "metrics.csv.tmp"
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(history)
    tmp.replace(out / "metrics.csv")
