"""On-disk training caches: detect + crop once, saliency once; epochs only read arrays.

Crop cache (a directory)
    ``crops.npy``      uint8 ``(N, S, S, 3)`` crops, already in the model's colour handling
                       (:func:`salface.models.preprocess.prepare_crops`), as a memory map
    ``labels.npy``     int16 ``(N, T)`` class index per task (−1 = missing), tasks in ``meta["tasks"]``
    ``split.npy``      int8 ``(N,)`` split id (``SPLITS``: 0 train, 1 val, 2 test, −1 unassigned)
    ``boxes.npy``      float32 ``(N, 4)`` the face box in crop pixels
    ``landmarks.npy``  float32 ``(N, 5, 2)`` landmarks in crop pixels (NaN when the face came from a fallback)
    ``detected.npy``   bool ``(N,)`` True when the detector found the face, False for a fallback
    ``meta.json``      settings, sample paths' hash (``key``), progress (``done``), detection rate
    ``targets_<task>.npy``  optional float32 ``(N, C)`` label distributions (FER+'s annotator votes),
                       from :func:`write_soft_targets`; presets with ``soft_targets`` train on them

Each sample goes through the project's own detector and :func:`salface.crop.crop_face`, exactly
as ``analyze`` would process a photo ("train the way you infer"). Choices made here:

* Images smaller than ``upscale_to`` on their short side (FER+'s 48×48) are enlarged with bicubic
  interpolation before detection, and the face is cropped from the enlarged image.
* Among the detected faces, the one overlapping the dataset's own face box most (IoU) is kept; the
  dataset box is the whole image when the dataset gives none (UTKFace, FER+). If no face is found
  or none overlaps (IoU < ``min_iou``), the dataset box itself is cropped **without margin**
  (it already frames a whole face) and the sample is flagged ``detected=False``.

The cache is keyed by a hash of the sample paths, their labels and splits, and every setting: a
cache whose key differs is rebuilt. Building is resumable: work is written in chunks and
``meta["done"]`` records how far it got.

Saliency cache: :func:`build_saliency_cache` adds ``saliency_<name>.npy`` uint8 ``(N, S, S)``
(map × 255) computed on the cached crops; reweighting happens on the fly during training, so a
ratio sweep reuses one map cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import cv2
import numpy as np

from ..crop import CROP_MODES, align_face, crop_face
from ..labels import labels_for
from ..types import Box, Face

SPLITS: dict[str, int] = {"train": 0, "val": 1, "test": 2}
CACHE_VERSION = 1
CHUNK = 512


class CacheError(RuntimeError):
    """A cache is missing, stale or damaged."""


def _label_index(task: str, value: Any) -> int:
    if value is None:
        return -1
    if isinstance(value, str):
        names = labels_for(task)
        if value not in names:
            raise ValueError(f"unknown {task} label {value!r}; expected one of {list(names)}")
        return names.index(value)
    v = int(value)
    if v >= len(labels_for(task)) or v < -1:
        raise ValueError(f"{task} label index {v} out of range")
    return v


def _sample_labels(sample: Any) -> dict[str, Any]:
    labels = getattr(sample, "labels", None)
    if labels is None and isinstance(sample, dict):
        labels = sample.get("labels")
    return dict(labels or {})


def _sample_split(sample: Any, default: str | None) -> str | None:
    s = getattr(sample, "split", None)
    return s if s is not None else default


def _sample_box(sample: Any) -> Box | None:
    b = getattr(sample, "box", None)
    if b is None:
        return None
    if isinstance(b, Box):
        return b
    x1, y1, x2, y2 = (float(v) for v in b)
    return Box(x1, y1, x2, y2)


def cache_key(paths: Sequence[str], labels: np.ndarray, settings: dict) -> str:
    """Hash of the sample paths, their labels and the settings (split ids are not part of it:
    :func:`assign_splits` can change them without recomputing crops)."""
    h = hashlib.sha256()
    h.update(json.dumps(settings, sort_keys=True).encode())
    for p in paths:
        h.update(str(p).encode())
        h.update(b"\0")
    h.update(np.ascontiguousarray(labels).tobytes())
    return h.hexdigest()


@dataclass
class CropCache:
    """A built crop cache, opened read-only (arrays are memory maps unless ``load=True``)."""

    root: Path
    meta: dict
    crops: np.ndarray
    labels: np.ndarray
    split: np.ndarray
    boxes: np.ndarray
    landmarks: np.ndarray
    detected: np.ndarray

    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(self.meta["tasks"])

    @property
    def size(self) -> int:
        return int(self.meta["size"])

    @property
    def color(self) -> str:
        return str(self.meta["color"])

    def __len__(self) -> int:
        return int(self.crops.shape[0])

    def indices(self, split: str) -> np.ndarray:
        return np.flatnonzero(self.split == SPLITS[split])

    def task_labels(self, task: str) -> np.ndarray:
        if task not in self.tasks:
            raise KeyError(f"cache {self.root} has no labels for task {task!r} (tasks: {self.tasks})")
        return self.labels[:, self.tasks.index(task)].astype(np.int64)

    def saliency(self, name: str) -> np.ndarray:
        if name == "none":
            raise ValueError("saliency 'none' has no maps")
        p = self.root / f"saliency_{name}.npy"
        mp = self.root / f"saliency_{name}.json"
        if not p.exists() or not mp.exists():
            raise CacheError(f"no {name!r} saliency cache in {self.root}; build it with "
                             f"`salface cache saliency {self.root} --saliency {name}`")
        m = json.loads(mp.read_text())
        if m.get("crop_key") != self.meta["key"] or m.get("done") != len(self):
            raise CacheError(f"saliency cache {p} is stale or incomplete; rebuild it")
        return np.load(p, mmap_mode="r")

    @property
    def paths(self) -> list[str]:
        return json.loads((self.root / "paths.json").read_text())

    def soft_targets(self, task: str) -> np.ndarray | None:
        """``(N, C)`` float32 label distributions for ``task`` (``targets_<task>.npy``, written by
        :func:`write_soft_targets`), or ``None`` when the cache has none. A row of zeros means
        the sample has no distribution (train on its hard label)."""
        p = self.root / f"targets_{task}.npy"
        if not p.exists():
            return None
        t = np.load(p)
        if t.shape != (len(self), len(labels_for(task))):
            raise CacheError(f"{p} has shape {t.shape}, expected {(len(self), len(labels_for(task)))}; "
                             f"rewrite it with `salface cache targets`")
        return t


def open_crop_cache(root: str | Path, load: bool = False) -> CropCache:
    """Open a complete crop cache (``load=True`` reads the crops into memory)."""
    root = Path(root)
    mp = root / "meta.json"
    if not mp.exists():
        raise CacheError(f"{root} is not a crop cache (no meta.json); build it with `salface cache crops`")
    meta = json.loads(mp.read_text())
    if meta.get("done") != meta.get("n"):
        raise CacheError(f"crop cache {root} is incomplete ({meta.get('done')}/{meta.get('n')}); "
                         f"run the same build command again to resume")
    mode = None if load else "r"
    arr = {k: np.load(root / f"{k}.npy", mmap_mode=mode)
           for k in ("crops", "labels", "split", "boxes", "landmarks", "detected")}
    return CropCache(root=root, meta=meta, **arr)


def _pick_face(faces: list[Face], ref: Box, min_iou: float) -> Face | None:
    best, best_iou = None, min_iou
    for f in faces:
        iou = f.box.iou(ref)
        if iou >= best_iou:
            best, best_iou = f, iou
    return best


def crop_sample(image: np.ndarray, detector: Callable[[np.ndarray], list[Face]] | None,
                *, size: int, margin: float, align: bool = False, ref_box: Box | None = None,
                upscale_to: int = 0, min_iou: float = 0.1, crop_mode: str = "margin", frame=None):
    """Detect and crop the face of one dataset image. Returns ``(crop_pixels, box, landmarks,
    detected)`` with box/landmarks in crop pixels (landmarks NaN for a fallback crop).
    ``crop_mode="arcface"`` aligns a detected face's landmarks to the ArcFace template
    (:func:`salface.crop.align_face`, ``margin`` = its extra margin). ``frame`` limits a detected
    face's photo to a source frame first (:func:`salface.crop.crop_face`)."""
    h, w = image.shape[:2]
    scale = 1.0
    if upscale_to and min(h, w) < upscale_to:
        scale = upscale_to / min(h, w)
        image = cv2.resize(image, (int(round(w * scale)), int(round(h * scale))),
                           interpolation=cv2.INTER_CUBIC)
    ref = ref_box if ref_box is not None else Box(0.0, 0.0, float(w), float(h))
    ref = Box(ref.x1 * scale, ref.y1 * scale, ref.x2 * scale, ref.y2 * scale)
    face = _pick_face(detector(image), ref, min_iou) if detector is not None else None
    detected = face is not None
    if face is None:
        face = Face(box=ref, score=0.0)
        crop = crop_face(image, face, size=size, margin=0.0, align=False)
    elif crop_mode == "arcface":
        crop = align_face(image, face, size=size, margin=margin)
    else:
        crop = crop_face(image, face, size=size, margin=margin, align=align, frame=frame)
    b = crop.to_crop_coords(np.array([[face.box.x1, face.box.y1], [face.box.x2, face.box.y2]]))
    lm = crop.landmarks
    if lm is None:
        lm = np.full((5, 2), np.nan, np.float32)
    return crop.pixels, b.reshape(-1).astype(np.float32), lm, detected


def _get_detector(name: str, **kwargs):
    if name == "none":
        return None
    from ..detect import get_detector  # imported lazily: only cache building needs a detector
    return get_detector(name, **kwargs)


def assign_splits(root: str | Path, split_names: Sequence[str | None]) -> None:
    """Rewrite a cache's split ids (``"train"``/``"val"``/``"test"``/``None`` per sample, in cache
    order) without touching the crops."""
    root = Path(root)
    meta = json.loads((root / "meta.json").read_text())
    if len(split_names) != int(meta["n"]):
        raise ValueError(f"{len(split_names)} split names for a cache of {meta['n']} samples")
    ids = np.array([SPLITS[s] if s is not None else -1 for s in split_names], np.int8)
    old = root / "split.npy"
    if old.exists() and np.array_equal(np.load(old), ids):
        return
    tmp = root / "split.tmp.npy"
    np.save(tmp, ids)
    tmp.replace(old)


def build_crop_cache(samples: Iterable[Any], out_path: str | Path, *, size: int, margin: float = 0.30,
                     detector: str = "yunet", color: str = "rgb", tasks: Sequence[str] | None = None,
                     splits: Sequence[str | None] | None = None, align: bool = False,
                     upscale_to: int = 0, min_iou: float = 0.1, progress: bool = True,
                     detector_kwargs: dict | None = None, detector_obj: Callable | None = None,
                     crop_mode: str = "margin", frame: Sequence[float] | None = None) -> CropCache:
    """Detect, crop and colour-convert every sample once into a cache directory ``out_path``.

    ``samples`` carry ``path``, ``labels`` (``{task: index or class name}``) and ``load()`` (→ RGB
    uint8), optionally ``box`` (the dataset's face box) and ``split``; ``splits`` overrides the
    samples' own split names. Resumes an interrupted build with the same key; rebuilds a stale one.
    ``crop_mode`` is ``"margin"`` (the papers' enlarged box) or ``"arcface"`` (landmark-aligned,
    ``margin`` = the extra margin around the template; see :mod:`salface.crop`). ``frame`` crops
    every photo as if it ended at that source frame (:mod:`salface.training.framing`; experiments).
    """
    if crop_mode not in CROP_MODES:
        raise ValueError(f"unknown crop mode {crop_mode!r}; expected one of {list(CROP_MODES)}")
    from ..models.config import ClassifierConfig
    from ..models.preprocess import prepare_crops

    samples = list(samples)
    n = len(samples)
    if n == 0:
        raise ValueError("no samples to cache")
    if tasks is None:
        tasks = sorted({t for s in samples for t in _sample_labels(s)})
    tasks = tuple(tasks)
    paths = [str(getattr(s, "path", "")) for s in samples]
    labels = np.full((n, len(tasks)), -1, np.int16)
    for i, s in enumerate(samples):
        lab = _sample_labels(s)
        for j, t in enumerate(tasks):
            labels[i, j] = _label_index(t, lab.get(t))
    split_names = list(splits) if splits is not None else [_sample_split(s, None) for s in samples]
    if len(split_names) != n:
        raise ValueError(f"{len(split_names)} split names for {n} samples")
    split_ids = np.array([SPLITS[s] if s is not None else -1 for s in split_names], np.int8)
    settings = {"version": CACHE_VERSION, "size": int(size), "margin": float(margin),
                "detector": detector, "color": color, "align": bool(align),
                "upscale_to": int(upscale_to), "min_iou": float(min_iou), "tasks": list(tasks)}
    if crop_mode != "margin":  # absent = "margin": older caches keep their keys
        settings["crop_mode"] = crop_mode
    if frame is not None:  # absent = the whole photo
        settings["frame"] = [float(v) for v in frame]
    key = cache_key(paths, labels, settings)
    out = Path(out_path)
    out.mkdir(parents=True, exist_ok=True)
    mp = out / "meta.json"
    meta = json.loads(mp.read_text()) if mp.exists() else None
    if meta is not None and meta.get("key") == key and meta.get("done") == n:
        assign_splits(out, split_names)
        return open_crop_cache(out)
    fresh = meta is None or meta.get("key") != key
    if fresh:
        meta = {**settings, "key": key, "n": n, "done": 0, "created": time.strftime("%Y-%m-%d %H:%M:%S")}
        for f in out.glob("saliency_*"):
            f.unlink()
        np.save(out / "labels.npy", labels)
        np.save(out / "split.npy", split_ids)
        (out / "paths.json").write_text(json.dumps(paths))
        specs = {"crops": ((n, size, size, 3), np.uint8), "boxes": ((n, 4), np.float32),
                 "landmarks": ((n, 5, 2), np.float32), "detected": ((n,), np.bool_)}
        for k, (shape, dt) in specs.items():
            np.lib.format.open_memmap(out / f"{k}.npy", mode="w+", dtype=dt, shape=shape).flush()
        mp.write_text(json.dumps(meta, indent=1))
    arrs = {k: np.load(out / f"{k}.npy", mmap_mode="r+") for k in ("crops", "boxes", "landmarks", "detected")}
    det = detector_obj if detector_obj is not None else _get_detector(detector, **(detector_kwargs or {}))
    cfg = ClassifierConfig(name="cache", backbone="mobilenet_v2", tasks=("gender",), input_size=size,
                           color=color, saliency="none")
    start = int(meta["done"])
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=n, initial=start, desc=f"crops → {out.name}", unit="img", mininterval=5)
    for c0 in range(start, n, CHUNK):
        c1 = min(n, c0 + CHUNK)
        px = np.empty((c1 - c0, size, size, 3), np.uint8)
        for i in range(c0, c1):
            s = samples[i]
            try:
                img = s.load()
            except Exception as exc:
                raise CacheError(f"cannot read {paths[i]}: {exc}") from exc
            p, b, lm, d = crop_sample(img, det, size=size, margin=margin, align=align,
                                      ref_box=_sample_box(s), upscale_to=upscale_to, min_iou=min_iou,
                                      crop_mode=crop_mode, frame=frame)
            px[i - c0] = p
            arrs["boxes"][i], arrs["landmarks"][i], arrs["detected"][i] = b, lm, d
            if bar is not None:
                bar.update(1)
        arrs["crops"][c0:c1] = prepare_crops(px, cfg)
        for a in arrs.values():
            a.flush()
        meta["done"] = c1
        det_arr = np.asarray(arrs["detected"][:c1])
        meta["detection_rate"] = float(det_arr.mean())
        tmp = mp.with_suffix(".tmp")
        tmp.write_text(json.dumps(meta, indent=1))
        tmp.replace(mp)
    if bar is not None:
        bar.close()
    return open_crop_cache(out)


def _saliency_sha256(name: str) -> str | None:
    """SHA-256 of the bundled weights behind saliency model ``name`` (None for classical ones),
    recorded so a cache can be traced to the exact saliency model that made it."""
    if name not in ("mlnet", "ml-net"):
        return None
    try:
        from ..hub import load_manifest
        from ..saliency.mlnet import DEFAULT_MODEL_NAME
        return load_manifest()["models"].get(DEFAULT_MODEL_NAME, {}).get("sha256")
    except Exception:  # a cache is still usable without the record
        return None


def build_saliency_cache(crop_cache: CropCache | str | Path, saliency_name: str, *, batch: int = 64,
                         progress: bool = True, model: Any = None) -> np.ndarray:
    """Compute ``saliency_name`` maps for every cached crop into ``saliency_<name>.npy`` (uint8,
    map × 255, resumable). Returns the map array (memory map)."""
    cc = crop_cache if isinstance(crop_cache, CropCache) else open_crop_cache(crop_cache)
    if saliency_name == "none":
        raise ValueError("saliency 'none' needs no cache")
    if model is None:
        from ..saliency import get_saliency
        model = get_saliency(saliency_name)
    n, s = len(cc), cc.size
    p = cc.root / f"saliency_{saliency_name}.npy"
    mp = cc.root / f"saliency_{saliency_name}.json"
    meta = json.loads(mp.read_text()) if mp.exists() else None
    if meta is None or meta.get("crop_key") != cc.meta["key"] or not p.exists():
        meta = {"crop_key": cc.meta["key"], "saliency": saliency_name, "done": 0, "n": n,
                "model_sha256": _saliency_sha256(saliency_name)}
        np.lib.format.open_memmap(p, mode="w+", dtype=np.uint8, shape=(n, s, s)).flush()
        mp.write_text(json.dumps(meta))
    maps = np.load(p, mmap_mode="r+")
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=n, initial=meta["done"], desc=f"saliency {saliency_name}", unit="img", mininterval=5)
    for c0 in range(int(meta["done"]), n, batch):
        c1 = min(n, c0 + batch)
        m = np.asarray(model(np.asarray(cc.crops[c0:c1])), dtype=np.float32)
        if m.shape != (c1 - c0, s, s):
            raise CacheError(f"saliency model {saliency_name!r} returned shape {m.shape}, "
                             f"expected {(c1 - c0, s, s)}")
        maps[c0:c1] = np.clip(np.rint(m * 255.0), 0, 255).astype(np.uint8)
        if (c1 // batch) % 8 == 0 or c1 == n:
            maps.flush()
            meta["done"] = c1
            mp.write_text(json.dumps(meta))
        if bar is not None:
            bar.update(c1 - c0)
    if bar is not None:
        bar.close()
    maps.flush()
    return np.load(p, mmap_mode="r")


def apply_split_file(root: str | Path, split_path: str | Path) -> dict[str, int]:
    """Assign the splits of a split file (:func:`salface.data.splits.read_split`) to a cache by
    sample path; cached samples the file does not list become unassigned (−1). Every listed sample
    must be in the cache with the same labels. Returns the count per split."""
    from ..data.splits import read_split

    root = Path(root)
    cc = open_crop_cache(root)
    pos = {p: i for i, p in enumerate(cc.paths)}
    names: list[str | None] = [None] * len(cc)
    for split, samples in read_split(split_path).items():
        sp = "val" if split in ("valid", "validation") else split
        if sp not in SPLITS:
            raise ValueError(f"{split_path}: unknown split name {split!r}")
        for s in samples:
            i = pos.get(str(s.path))
            if i is None:
                raise CacheError(f"{split_path}: {s.path} is not in the cache {root}; rebuild the cache "
                                 f"from this split file")
            for j, t in enumerate(cc.tasks):
                want = s.labels.get(t, -1)
                if int(cc.labels[i, j]) != int(want):
                    raise CacheError(f"{split_path}: {s.path} has {t} label {want}, the cache "
                                     f"{root} has {int(cc.labels[i, j])}; rebuild the cache")
            names[i] = sp
    assign_splits(root, names)
    return {k: sum(1 for x in names if x == k) for k in SPLITS}


def sample_soft_target(sample: Any, task: str) -> list[float] | None:
    """A sample's label distribution for ``task``: ``meta["soft"][task]`` when given, else, for
    FER+ samples (``meta`` with ``votes`` and ``ferplus_split``) and the expression task, the
    annotators' votes over the 7 classes (:func:`salface.data.ferplus.ferplus_vote_distribution`)."""
    meta = getattr(sample, "meta", None) or (sample.get("meta") if isinstance(sample, dict) else None) or {}
    given = (meta.get("soft") or {}).get(task)
    if given is not None:
        return [float(v) for v in given]
    if task == "expression" and "votes" in meta and "ferplus_split" in meta:
        from ..data.ferplus import ferplus_vote_distribution
        return ferplus_vote_distribution(meta["votes"])
    return None


def write_soft_targets(root: str | Path, samples: Iterable[Any]) -> dict[str, int]:
    """Write ``targets_<task>.npy`` into a crop cache from the samples' label distributions
    (:func:`sample_soft_target`), matched by path. Tasks for which no sample has a distribution
    get no file. Returns, per task, how many samples got one."""
    root = Path(root)
    cc = open_crop_cache(root)
    samples = list(samples)  # read once per task
    pos = {p: i for i, p in enumerate(cc.paths)}
    counts: dict[str, int] = {}
    for task in cc.tasks:
        n_cls = len(labels_for(task))
        out = np.zeros((len(cc), n_cls), np.float32)
        n = 0
        for s in samples:
            i = pos.get(str(getattr(s, "path", None) or s.get("path")))
            if i is None:
                continue
            dist = sample_soft_target(s, task)
            if dist is None:
                continue
            if len(dist) != n_cls or min(dist) < 0 or sum(dist) <= 0:
                raise CacheError(f"{getattr(s, 'path', s)}: {task} distribution {dist} is not "
                                 f"{n_cls} non-negative weights with a positive sum")
            out[i] = np.asarray(dist, np.float32) / np.float32(sum(dist))
            n += 1
        if n:
            tmp = root / f"targets_{task}.tmp.npy"
            np.save(tmp, out)
            os.replace(tmp, root / f"targets_{task}.npy")
            counts[task] = n
    return counts


def samples_from_split_file(split_path: str | Path) -> tuple[list[Any], list[str]]:
    """All samples of a split file and their split names (``valid`` → ``val``)."""
    from ..data.splits import read_split

    samples, names = [], []
    for split, ss in read_split(split_path).items():
        sp = "val" if split in ("valid", "validation") else split
        samples += ss
        names += [sp] * len(ss)
    return samples, names


# ------------------------------------------------------------------------------------ packs

PACK_VERSION = 1


def _bytes_array(text: str) -> np.ndarray:
    return np.frombuffer(text.encode(), dtype=np.uint8)


def _array_text(a: np.ndarray) -> str:
    return bytes(np.asarray(a, np.uint8)).decode()


def _encode_crop(crop: np.ndarray, codec: str, quality: int) -> bytes:
    if codec == "png":
        ok, buf = cv2.imencode(".png", crop, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    elif codec == "jpeg":
        ok, buf = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    elif codec == "webp":
        ok, buf = cv2.imencode(".webp", crop, [cv2.IMWRITE_WEBP_QUALITY, int(quality)])
    else:
        raise ValueError(f"unknown pack codec {codec!r}; expected png, jpeg or webp")
    if not ok:
        raise CacheError(f"OpenCV could not encode a {crop.shape} crop as {codec}")
    return buf.tobytes()


def _decode_crop(data: bytes, channels: int) -> np.ndarray:
    flag = cv2.IMREAD_GRAYSCALE if channels == 1 else cv2.IMREAD_COLOR
    img = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
    if img is None:
        raise CacheError("a packed crop could not be decoded (damaged pack)")
    return img


def pack_cache(src: CropCache | str | Path, out_file: str | Path, *, index: np.ndarray | None = None,
               codec: str = "jpeg", quality: int = 95, progress: bool = True) -> dict[str, Any]:
    """Write the samples ``index`` (default: all) of a crop cache into one compact ``.npz`` file
    (no pickles): each crop encoded as an image (``png`` lossless; ``jpeg``/``webp`` lossy at
    ``quality``), with labels, splits, boxes, landmarks, detection flags, label distributions and
    the sample paths. A pack carries a training cache to another machine (a lent GPU takes at
    most 64 MiB a call); :func:`unpack_cache` turns it back into a crop cache.

    A lossy pack is a *different* cache: its key is derived from the source key, the index, the
    codec and the quality, so runs trained on it never pass for runs on the source. The SHA-256
    of the decoded crops is stored, and :func:`unpack_cache` checks that another machine's
    decoder gives the same pixels. Gray caches (three equal channels) are packed as one channel.
    Returns a summary (samples, bytes, bytes per crop, the mean absolute error of the decoded
    crops in grey levels, key)."""
    cc = src if isinstance(src, CropCache) else open_crop_cache(src)
    idx = np.arange(len(cc)) if index is None else np.sort(np.asarray(index, np.int64))
    if len(idx) == 0:
        raise ValueError("nothing to pack: the index is empty")
    if idx[0] < 0 or idx[-1] >= len(cc):
        raise ValueError(f"pack index out of range for a cache of {len(cc)} samples")
    crops = cc.crops
    gray = cc.color == "gray"
    channels = 1 if gray else 3
    chunks: list[bytes] = []
    offsets = np.zeros(len(idx) + 1, np.int64)
    digest = hashlib.sha256()
    abs_err = 0.0
    it = range(len(idx))
    if progress:
        from tqdm import tqdm
        it = tqdm(it, desc=f"pack {Path(cc.root).name}", unit="img", mininterval=5)
    for k in it:
        c = np.asarray(crops[idx[k]])
        if gray:
            if not (np.array_equal(c[..., 0], c[..., 1]) and np.array_equal(c[..., 0], c[..., 2])):
                raise CacheError(f"{cc.root}: crop {idx[k]} of a gray cache has unequal channels")
            c = c[..., 0]
        data = _encode_crop(np.ascontiguousarray(c), codec, quality)
        dec = _decode_crop(data, channels)
        digest.update(np.ascontiguousarray(dec).tobytes())
        abs_err += float(np.abs(dec.astype(np.int16) - c).mean())
        chunks.append(data)
        offsets[k + 1] = offsets[k] + len(data)
    key = hashlib.sha256(json.dumps({"source": cc.meta["key"], "codec": codec,
                                     "quality": None if codec == "png" else int(quality),
                                     "pack_version": PACK_VERSION}, sort_keys=True).encode()
                         + idx.tobytes()).hexdigest()
    meta = {k: v for k, v in cc.meta.items() if k not in ("done", "n", "created", "key")}
    meta["pack"] = {"source_key": cc.meta["key"], "source_root": str(cc.root), "source_n": len(cc),
                    "codec": codec, "quality": None if codec == "png" else int(quality),
                    "lossless": codec == "png", "version": PACK_VERSION,
                    "decoded_sha256": digest.hexdigest(),
                    "mean_abs_error": round(abs_err / len(idx), 4),
                    "bytes_per_crop": round(float(offsets[-1]) / len(idx), 1)}
    meta["key"] = key
    paths = cc.paths
    arrays: dict[str, np.ndarray] = {
        "meta_json": _bytes_array(json.dumps(meta)),
        "paths_json": _bytes_array(json.dumps([paths[i] for i in idx])),
        "data": np.frombuffer(b"".join(chunks), np.uint8), "offsets": offsets,
        "index": idx, "channels": np.array([channels], np.int8),
        "labels": np.asarray(cc.labels[idx]), "split": np.asarray(cc.split[idx]),
        "boxes": np.asarray(cc.boxes[idx]), "landmarks": np.asarray(cc.landmarks[idx]),
        "detected": np.asarray(cc.detected[idx]),
    }
    for t in cc.tasks:
        st = cc.soft_targets(t)
        if st is not None:
            arrays[f"targets_{t}"] = np.asarray(st[idx])
    out = Path(out_file)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, out)
    return {"file": str(out), "samples": int(len(idx)), "bytes": out.stat().st_size,
            "crop_bytes": int(offsets[-1]), "bytes_per_crop": meta["pack"]["bytes_per_crop"],
            "mean_abs_error": meta["pack"]["mean_abs_error"], "key": key, "codec": codec,
            "channels": channels}


def unpack_cache(pack_file: str | Path, out_dir: str | Path, *, progress: bool = True) -> CropCache:
    """Turn a pack (:func:`pack_cache`) into a crop cache folder; an existing folder with the
    same key is reused. The decoded pixels are checked against the SHA-256 the pack carries:
    ``meta["pack"]["decoded_match"]`` says whether this machine's decoder agreed (a lossy pack
    decoded differently elsewhere is still usable, but then it is not bit-identical)."""
    p = Path(pack_file)
    try:
        z = np.load(p, allow_pickle=False)
        meta = json.loads(_array_text(z["meta_json"]))
        paths = json.loads(_array_text(z["paths_json"]))
        data, offsets = z["data"], z["offsets"]
        channels = int(z["channels"][0])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise CacheError(f"{p} is not a salface cache pack: {exc}") from exc
    out = Path(out_dir)
    mp = out / "meta.json"
    if mp.exists():
        old = json.loads(mp.read_text())
        if old.get("key") == meta["key"] and old.get("done") == old.get("n"):
            return open_crop_cache(out)
    n, size = len(offsets) - 1, int(meta["size"])
    out.mkdir(parents=True, exist_ok=True)
    crops = np.lib.format.open_memmap(out / "crops.tmp.npy", mode="w+", dtype=np.uint8, shape=(n, size, size, 3))
    digest = hashlib.sha256()
    it = range(n)
    if progress:
        from tqdm import tqdm
        it = tqdm(it, desc=f"unpack {out.name}", unit="img", mininterval=5)
    for i in it:
        img = _decode_crop(bytes(data[offsets[i]:offsets[i + 1]]), channels)
        if img.shape[:2] != (size, size):
            raise CacheError(f"{p}: crop {i} decodes to {img.shape}, expected {size}×{size}")
        digest.update(np.ascontiguousarray(img).tobytes())
        crops[i] = img[..., None] if channels == 1 else img
    crops.flush()
    del crops
    os.replace(out / "crops.tmp.npy", out / "crops.npy")
    for k in ("labels", "split", "boxes", "landmarks", "detected"):
        np.save(out / f"{k}.npy", z[k])
    for f in list(out.glob("targets_*.npy")) + list(out.glob("saliency_*")):
        f.unlink()                      # left by another cache in this folder
    for k in z.files:
        if k.startswith("targets_"):
            np.save(out / f"{k}.npy", z[k])
    (out / "paths.json").write_text(json.dumps(paths))
    meta["pack"]["decoded_match"] = digest.hexdigest() == meta["pack"]["decoded_sha256"]
    meta["pack"]["file"] = p.name
    meta.update({"n": n, "done": n, "created": time.strftime("%Y-%m-%d %H:%M:%S")})
    mp.write_text(json.dumps(meta, indent=1))
    return open_crop_cache(out)
