"""Training-side helpers for the "in the wild" recipe: balanced sampling, an ordinal age loss and
an exponential moving average of the weights.

Balanced sampling (:func:`stratum_ids`, :func:`balance_weights`, :func:`balanced_order`)
    Each training sample belongs to a stratum, the combination of its labels on the chosen keys
    (e.g. gender × age group × race). Sample ``i`` is drawn with probability proportional to
    ``n_s(i) ** -power``: ``power = 1`` gives every stratum the same expected share, ``0`` is
    plain uniform sampling, ``0.5`` is in between (a stratum's share ∝ ``√n_s``). Draws are with
    replacement, one epoch = as many draws as training samples, through
    :class:`torch.utils.data.WeightedRandomSampler` with a seeded generator. A sample whose value
    on a key is missing (−1, e.g. the 3 UTKFace names without a race) forms its own "unknown"
    value on that key.

UTKFace race (:func:`utkface_race`)
    From the file name ``[age]_[gender]_[race]_[date&time].jpg.chip.jpg`` (0 White, 1 Black,
    2 Asian, 3 Indian, 4 Others); −1 when the field is missing or not a digit.

Gender loss weights within strata (:func:`within_stratum_weights`)
    Sampling stays as it is; only one task's loss is reweighted so that its classes weigh the
    same inside every stratum: sample ``i`` of class ``g`` in stratum ``s`` gets
    ``n_s / (K_s · n_{s,g})`` (``K_s`` = classes present in the stratum), clipped to
    ``[1 / clip, clip]`` and scaled to mean 1. A stratum with one class keeps weight 1 before the
    scaling. This removes the conditional prior ``P(class | stratum)`` from what the loss rewards
    (e.g. "older Indian faces are mostly men" in UTKFace) without changing which faces are seen.

Ordinal age loss (:func:`ordinal_targets`, :class:`OrdinalLoss`)
    The age head keeps its 8-class softmax. Its target is not one-hot but a discretised Gaussian
    over the class index centred on the true group, ``q_k ∝ exp(−(k − y)² / 2σ²)``, so predicting a
    neighbouring group costs less than a distant one; optionally plus ``λ · E_p[|k − y|]``, the
    expected distance in groups under the predicted distribution.

Auxiliary age in years (:func:`utkface_age_years`, :class:`AgeYearsHead`, :class:`AgeYearsLoss`)
    UTKFace's file names give the age in years, which the 8 Adience groups throw away (a 21- and
    a 31-year-old are both "25-32"). During training only, a second linear head on the shared
    feature vector predicts a distribution over 0–100 years; its target is a discretised Gaussian
    around the true age (σ years), its loss the cross-entropy to it plus ``λ`` × |expected age −
    true age| / 10 (label-distribution learning with an expectation term). The head is not part
    of the network that is saved or shipped: it only shapes the shared features.

EMA (:class:`ModelEMA`)
    ``θ_ema ← d θ_ema + (1 − d) θ`` after every optimiser step with
    ``d = min(decay, (1 + n) / (10 + n))`` (n = updates so far; the warm-up lets the average
    forget the initial weights quickly), floating-point buffers averaged the same way, integer
    buffers copied. Evaluation and ``best.safetensors`` use the EMA weights.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.utkface import parse_utk_name

UTKFACE_RACES = ("white", "black", "asian", "indian", "others")
_UTK_NAME = re.compile(r"^(\d+)_(\d+)_(\d+)_")


AGE_YEARS_BINS = 101  # 0..100 years; older ages fall in the last bin


def utkface_age_years(path: str) -> int:
    """UTKFace age in years from the file name (:func:`salface.data.utkface.parse_utk_name`), or
    −1 when the name is not a UTKFace name."""
    info = parse_utk_name(Path(path).name)
    return info["age_years"] if info is not None else -1


def utkface_race(path: str) -> int:
    """UTKFace race index from the file name, or −1 when the name has no race field."""
    m = _UTK_NAME.match(Path(path).name)
    if m is None:
        return -1
    r = int(m.group(3))
    return r if 0 <= r < len(UTKFACE_RACES) else -1


def stratum_ids(columns: Sequence[np.ndarray]) -> tuple[np.ndarray, int]:
    """Stratum id of each sample from its values on several keys (−1 = missing, its own value).
    Returns ``(ids, number of distinct strata)``."""
    if not columns:
        raise ValueError("balanced sampling needs at least one key")
    stacked = np.stack([np.asarray(c, np.int64) for c in columns], axis=1)
    _, ids = np.unique(stacked, axis=0, return_inverse=True)
    ids = ids.reshape(-1)
    return ids, int(ids.max()) + 1 if len(ids) else 0


def balance_weights(strata: np.ndarray, power: float = 1.0) -> np.ndarray:
    """Sampling weight of each sample, ``n_s ** -power`` normalised to sum 1."""
    if power < 0:
        raise ValueError(f"power must be >= 0, got {power}")
    strata = np.asarray(strata, np.int64)
    counts = np.bincount(strata)
    w = counts[strata].astype(np.float64) ** -power
    return w / w.sum()


def expected_shares(strata: np.ndarray, power: float = 1.0) -> np.ndarray:
    """Expected share of draws falling in each stratum (∝ ``n_s ** (1 − power)``)."""
    w = balance_weights(strata, power)
    return np.bincount(np.asarray(strata, np.int64), weights=w)


def balanced_order(candidates: np.ndarray, strata: np.ndarray, power: float, seed: int,
                   num_samples: int | None = None) -> np.ndarray:
    """``num_samples`` (default ``len(candidates)``) indices drawn from ``candidates`` with
    :class:`~torch.utils.data.WeightedRandomSampler` (with replacement) at the weights of
    :func:`balance_weights`; ``strata`` is aligned with ``candidates``. Same seed, same order."""
    from torch.utils.data import WeightedRandomSampler

    candidates = np.asarray(candidates)
    if len(candidates) != len(strata):
        raise ValueError(f"{len(candidates)} candidates but {len(strata)} strata")
    g = torch.Generator()
    g.manual_seed(int(seed))
    w = torch.from_numpy(balance_weights(strata, power))
    sampler = WeightedRandomSampler(w, num_samples or len(candidates), replacement=True, generator=g)
    return candidates[np.fromiter(iter(sampler), dtype=np.int64)]


def within_stratum_weights(labels: np.ndarray, strata: np.ndarray, clip: float = 4.0) -> np.ndarray:
    """Per-sample loss weights that balance ``labels`` (−1 = unlabelled, weight 0) within each
    stratum; see the module docstring."""
    if clip < 1:
        raise ValueError(f"clip must be >= 1, got {clip}")
    labels = np.asarray(labels, np.int64)
    strata = np.asarray(strata, np.int64)
    if labels.shape != strata.shape:
        raise ValueError(f"{len(labels)} labels but {len(strata)} strata")
    w = np.zeros(len(labels), np.float64)
    ok = labels >= 0
    if not ok.any():
        return w
    n_cls = int(labels[ok].max()) + 1
    cell = strata[ok] * n_cls + labels[ok]
    n_cell = np.bincount(cell, minlength=(int(strata.max()) + 1) * n_cls).reshape(-1, n_cls)
    n_s = n_cell.sum(1)
    k_s = (n_cell > 0).sum(1)
    raw = n_s[strata[ok]] / (k_s[strata[ok]] * n_cell[strata[ok], labels[ok]])
    raw = np.clip(raw, 1.0 / clip, clip)
    w[ok] = raw / raw.mean()
    return w


# ------------------------------------------------------------------------------------ ordinal loss

def ordinal_targets(y: torch.Tensor, n_classes: int, sigma: float) -> torch.Tensor:
    """``(N, n_classes)`` Gaussian label distributions over the class index, centred on ``y``."""
    if sigma <= 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    k = torch.arange(n_classes, device=y.device, dtype=torch.float32)
    d = k[None, :] - y.float()[:, None]
    q = torch.exp(-0.5 * (d / sigma) ** 2)
    return q / q.sum(dim=1, keepdim=True)


class OrdinalLoss(nn.Module):
    """Cross-entropy against :func:`ordinal_targets` (+ ``penalty`` × expected |k − y|); rows with
    ``y = −1`` are ignored. Mean over the labelled rows."""

    def __init__(self, n_classes: int, sigma: float = 0.6, penalty: float = 0.0) -> None:
        super().__init__()
        if penalty < 0:
            raise ValueError(f"penalty must be >= 0, got {penalty}")
        self.n_classes, self.sigma, self.penalty = n_classes, float(sigma), float(penalty)

    def forward(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        v = y >= 0
        if not bool(v.any()):
            return logits.sum() * 0.0
        logits, y = logits[v], y[v]
        logp = F.log_softmax(logits.float(), dim=1)
        q = ordinal_targets(y, self.n_classes, self.sigma)
        loss = -(q * logp).sum(dim=1)
        if self.penalty:
            k = torch.arange(self.n_classes, device=y.device, dtype=torch.float32)
            dist = (k[None, :] - y.float()[:, None]).abs()
            loss = loss + self.penalty * (logp.exp() * dist).sum(dim=1)
        return loss.mean()


class AgeYearsHead(nn.Module):
    """Training-only head: the shared feature vector → logits over 0–100 years."""

    def __init__(self, in_features: int) -> None:
        super().__init__()
        self.fc = nn.Linear(in_features, AGE_YEARS_BINS)
        nn.init.zeros_(self.fc.weight)  # starts uniform: no gradient reaches the trunk until it learns
        nn.init.zeros_(self.fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


class AgeYearsLoss(nn.Module):
    """Cross-entropy to a Gaussian over years (``sigma``) + ``l1`` × |E[age] − age| / 10; rows with
    age −1 are ignored. Mean over the labelled rows."""

    def __init__(self, sigma: float = 2.0, l1: float = 1.0) -> None:
        super().__init__()
        if sigma <= 0 or l1 < 0:
            raise ValueError(f"sigma must be > 0 and l1 >= 0, got {sigma}, {l1}")
        self.sigma, self.l1 = float(sigma), float(l1)

    def forward(self, logits: torch.Tensor, years: torch.Tensor) -> torch.Tensor:
        v = years >= 0
        if not bool(v.any()):
            return logits.sum() * 0.0
        logits, y = logits[v].float(), years[v].float().clamp(max=AGE_YEARS_BINS - 1)
        logp = F.log_softmax(logits, dim=1)
        k = torch.arange(AGE_YEARS_BINS, device=y.device, dtype=torch.float32)
        q = torch.exp(-0.5 * ((k[None, :] - y[:, None]) / self.sigma) ** 2)
        q = q / q.sum(dim=1, keepdim=True)
        loss = -(q * logp).sum(dim=1)
        if self.l1:
            loss = loss + self.l1 * (expected_years(logits) - y).abs() / 10.0
        return loss.mean()


def expected_years(logits: torch.Tensor) -> torch.Tensor:
    """The mean of an :class:`AgeYearsHead`'s distribution, in years."""
    k = torch.arange(AGE_YEARS_BINS, device=logits.device, dtype=torch.float32)
    return (F.softmax(logits.float(), dim=1) * k[None, :]).sum(dim=1)


# ------------------------------------------------------------------------------------ EMA

class ModelEMA:
    """Exponential moving average of a model's parameters and buffers (a separate copy)."""

    def __init__(self, model: nn.Module, decay: float = 0.998) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.decay = float(decay)
        self.updates = 0

    def current_decay(self) -> float:
        return min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        d = self.current_decay()
        self.updates += 1
        src = model.state_dict()
        for k, v in self.module.state_dict().items():
            s = src[k].detach()
            if v.dtype.is_floating_point:
                v.mul_(d).add_(s.to(v.dtype), alpha=1.0 - d)
            else:
                v.copy_(s)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.module.state_dict()

    def load(self, state: dict[str, torch.Tensor], updates: int) -> None:
        self.module.load_state_dict(state)
        self.updates = int(updates)


def cache_strata(cache, keys: Sequence[str], indices: np.ndarray) -> tuple[np.ndarray, int]:
    """Strata (:func:`stratum_ids`) of a crop cache's samples ``indices`` over ``keys``: task names
    of the cache's labels, or ``"race"`` (UTKFace file names, :func:`utkface_race`)."""
    cols = []
    for k in keys:
        if k == "race":
            paths = cache.paths
            cols.append(np.array([utkface_race(paths[i]) for i in indices], np.int64))
        elif k in cache.tasks:
            cols.append(cache.task_labels(k)[indices])
        else:
            raise ValueError(f"cannot balance on {k!r}: the cache {cache.root} has labels for "
                             f"{list(cache.tasks)} (and 'race' from UTKFace file names)")
    return stratum_ids(cols)
