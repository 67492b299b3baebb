"""The one model store: every model file salface uses — detector, saliency model, classifiers —
is found, verified and (for overrides) installed here.

* **Bundled files** ship inside the package in ``salface/bundled/``, described by
  ``manifest.json`` (schema 1): ML-Net and the classifiers, each as an ONNX file (what the
  default, torch-free runtime runs) and as safetensors (for the optional PyTorch backend and for
  fine-tuning). :func:`bundled_file` checks a file's SHA-256 against the manifest on every load;
  a mismatch raises :class:`~salface.errors.ChecksumError`, never a silent load.
  ``SALFACE_BUNDLED_DIR`` points the bundled directory elsewhere (tests, custom model sets).
* **The user cache** (:func:`cache_dir`, ``$SALFACE_HOME`` or ``~/.cache/salface``) holds the
  YuNet detector, which is not shipped in the package: ``salface fetch yunet --from PATH_OR_URL``
  (:func:`ensure_file`) installs it offline, or :func:`detector_file` downloads it from its
  public URL on first use; either way it is verified against its registry SHA-256
  (:data:`REMOTE_FILES`). ``SALFACE_OFFLINE=1`` forbids network access.

Downloads stream to ``<dest>.part`` beside the destination, are verified, then moved into place
with :func:`os.replace`, so a half-written or wrong file never sits under the final name.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .errors import ChecksumError, MissingModelError, ModelError

MANIFEST_SCHEMA = 1
DEFAULT_MODELS: dict[str, str] = {
    "age": "age-gender-ensemble",
    "gender": "age-gender-ensemble",
    "expression": "default-expression",
}
"""Task → name of the bundled classifier that serves it by default. Age and gender come from
``age-gender-ensemble`` (session 8): two networks on the same crop, an ImageNet MobileNetV2 (the
session-7 ``default-age`` weights) and a face-pretrained EdgeFace-XS, their answers averaged in
one ONNX graph; see the model card."""
FAST_MODELS: dict[str, str] = {
    "age": "default-age-gender",
    "gender": "default-age-gender",
    "expression": "default-expression",
}
"""Task → bundled classifier of the fast profile (``Analyzer(fast=True)``, ``salface analyze
--fast``): one network for age and gender. The profile also runs ML-Net as INT8 and no flip TTA;
its accuracy cost is measured in ``docs/pipeline.md``."""
_CHUNK = 1 << 20


@dataclass(frozen=True)
class RemoteFile:
    """A model file fetched on demand into the user cache."""

    name: str
    url: str
    sha256: str
    filename: str
    license: str
    description: str = ""


REMOTE_FILES: dict[str, RemoteFile] = {
    "yunet": RemoteFile(
        name="yunet",
        url="https://github.com/opencv/opencv_zoo/raw/main/models/face_detection_yunet/"
            "face_detection_yunet_2023mar.onnx",
        sha256="8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4",
        filename="face_detection_yunet_2023mar.onnx",
        license="MIT (opencv_zoo); Apache-2.0 (libfacedetection.train)",
        description="YuNet face detector (OpenCV FaceDetectorYN), 2023mar ONNX, 5 landmarks",
    ),
}


# --------------------------------------------------------------------------------------------
# cache and checksums


def cache_dir() -> Path:
    """``$SALFACE_HOME`` or ``~/.cache/salface``; created if missing."""
    env = os.environ.get("SALFACE_HOME")
    d = Path(env).expanduser() if env else Path.home() / ".cache" / "salface"
    d.mkdir(parents=True, exist_ok=True)
    return d


def remote_path(name: str) -> Path:
    """Where remote file ``name`` lives in the cache (whether or not it is installed)."""
    rf = _remote(name)
    return cache_dir() / "models" / rf.name / rf.filename


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            chunk = f.read(_CHUNK)
            if not chunk:
                break
            h.update(chunk)
    return h.hexdigest()


def _offline() -> bool:
    return os.environ.get("SALFACE_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _remote(name: str) -> RemoteFile:
    try:
        return REMOTE_FILES[name]
    except KeyError:
        raise KeyError(f"unknown remote model {name!r}; known: {', '.join(sorted(REMOTE_FILES))}") \
            from None


# --------------------------------------------------------------------------------------------
# downloads


def _progress_bar(total: int | None, label: str, enabled: bool):
    """A context-managed callable ``advance(n)``; rich when stderr is a terminal, else silent."""

    class _Null:
        def __enter__(self):
            return lambda n: None

        def __exit__(self, *a):
            return False

    if not enabled or not sys.stderr.isatty():
        return _Null()
    try:
        from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn,
                                   TimeRemainingColumn, TransferSpeedColumn)
    except ImportError:  # pragma: no cover - rich is a dependency
        return _Null()

    class _Rich:
        def __enter__(self):
            self.p = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                              TransferSpeedColumn(), TimeRemainingColumn(), transient=True)
            self.p.__enter__()
            self.t = self.p.add_task(label, total=total)
            return lambda n: self.p.update(self.t, advance=n)

        def __exit__(self, *a):
            return self.p.__exit__(*a)

    return _Rich()


def download(url: str, dest: str | os.PathLike, sha256: str | None, progress: bool = True,
             *, timeout: float = 60.0) -> Path:
    """Fetch ``url`` (http(s) or ``file://``) to ``dest``, verifying its SHA-256.

    The body streams into ``dest.part`` in the same folder; on success it is moved over ``dest``
    atomically. On a checksum mismatch the part file is deleted and :class:`ChecksumError` names
    the URL and both digests. HTTP and network failures raise :class:`MissingModelError`.
    ``sha256=None`` skips verification (only for callers that verify themselves).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    scheme = urllib.parse.urlparse(url).scheme.lower()
    if scheme in ("http", "https") and _offline():
        raise MissingModelError(f"SALFACE_OFFLINE is set: refusing to download {url}")
    h = hashlib.sha256()
    try:
        req = urllib.request.Request(url, headers={"User-Agent": "salface"})
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            length = resp.headers.get("Content-Length") if hasattr(resp, "headers") else None
            total = int(length) if length and length.isdigit() else None
            with open(part, "wb") as out, _progress_bar(total, dest.name, progress) as advance:
                while True:
                    chunk = resp.read(_CHUNK)
                    if not chunk:
                        break
                    out.write(chunk)
                    h.update(chunk)
                    advance(len(chunk))
    except urllib.error.HTTPError as exc:
        part.unlink(missing_ok=True)
        raise MissingModelError(f"download failed: {url}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        part.unlink(missing_ok=True)
        reason = getattr(exc, "reason", None) or exc
        raise MissingModelError(f"download failed: {url}: {reason}") from exc
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    actual = h.hexdigest()
    if sha256 is not None and actual.lower() != sha256.lower():
        part.unlink(missing_ok=True)
        raise ChecksumError(f"checksum mismatch for {url}: expected sha256 {sha256.lower()}, "
                            f"got {actual}")
    os.replace(part, dest)
    return dest


def _source_to_url(source: str) -> str:
    """A local path becomes a ``file://`` URL; URLs pass through."""
    parsed = urllib.parse.urlparse(source)
    if parsed.scheme.lower() in ("http", "https", "file", "ftp"):
        return source
    p = Path(source).expanduser()
    if not p.exists():
        raise MissingModelError(f"source file not found: {source}")
    if p.is_dir():
        raise MissingModelError(f"source is a folder, not a model file: {source}")
    return p.resolve().as_uri()


def is_installed(name: str) -> bool:
    """Whether remote file ``name`` sits in the cache (checksum not checked; see :func:`verify_remote`)."""
    return remote_path(name).is_file()


def verify_remote(name: str) -> str:
    """``"ok"``, ``"mismatch"`` or ``"missing"`` for remote file ``name`` in the cache."""
    p = remote_path(name)
    if not p.is_file():
        return "missing"
    return "ok" if sha256_file(p) == _remote(name).sha256 else "mismatch"


def ensure_file(name: str, *, source: str | None = None, download_ok: bool = True,
                progress: bool = True) -> Path:
    """Path of remote model ``name`` in the cache, installing it first if needed.

    ``source`` (a local path or URL) installs from there instead of the registry URL, replacing a
    cached copy that fails its checksum. Without ``source``, a missing file is downloaded from
    the public URL unless ``download_ok`` is false or ``SALFACE_OFFLINE=1``, in which case
    :class:`MissingModelError` explains how to install it from a local file. The cached file's
    SHA-256 is verified on every call; a corrupt cached file is an error (re-fetch to repair).
    """
    rf = _remote(name)
    dest = remote_path(name)
    if source is not None:
        if dest.is_file() and sha256_file(dest) == rf.sha256:
            return dest
        return download(_source_to_url(os.fspath(source)), dest, rf.sha256, progress=progress)
    if dest.is_file():
        actual = sha256_file(dest)
        if actual != rf.sha256:
            raise ChecksumError(
                f"cached model {name!r} at {dest} is corrupt: expected sha256 {rf.sha256}, got "
                f"{actual}; reinstall it with `salface fetch {name} --from PATH_OR_URL` or delete "
                "the file")
        return dest
    how = (f"install it with `salface fetch {name} --from /path/to/{rf.filename}` "
           f"(or salface.models.weights.ensure_file({name!r}, source=...)), "
           f"or download {rf.url} yourself")
    if _offline():
        raise MissingModelError(f"model {name!r} is not installed in {dest.parent} and "
                                f"SALFACE_OFFLINE is set; {how}")
    if not download_ok:
        raise MissingModelError(f"model {name!r} is not installed in {dest.parent}; {how}")
    try:
        return download(rf.url, dest, rf.sha256, progress=progress)
    except MissingModelError as exc:
        raise MissingModelError(f"{exc}; {how}") from exc


# --------------------------------------------------------------------------------------------
# bundled models


def bundled_dir() -> Path:
    """The folder of bundled model files + ``manifest.json`` (``$SALFACE_BUNDLED_DIR`` overrides)."""
    env = os.environ.get("SALFACE_BUNDLED_DIR")
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parent / "bundled"


def _manifest_path(directory: Path | None = None) -> Path:
    return (directory or bundled_dir()) / "manifest.json"


def load_manifest(directory: str | os.PathLike | None = None) -> dict[str, Any]:
    """The bundled manifest (``{"schema": 1, "models": {...}}``); empty models when absent."""
    p = _manifest_path(Path(directory) if directory else None)
    if not p.is_file():
        return {"schema": MANIFEST_SCHEMA, "models": {}}
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"{p}: invalid manifest JSON ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("models", {}), dict):
        raise ModelError(f"{p}: manifest must be an object with a 'models' object")
    if data.get("schema", MANIFEST_SCHEMA) != MANIFEST_SCHEMA:
        raise ModelError(f"{p}: unsupported manifest schema {data.get('schema')!r} "
                           f"(this salface reads schema {MANIFEST_SCHEMA})")
    data.setdefault("schema", MANIFEST_SCHEMA)
    data.setdefault("models", {})
    return data


def bundled_entry(name: str, directory: str | os.PathLike | None = None) -> dict[str, Any]:
    """The manifest entry of bundled model ``name``; :class:`MissingModelError` if there is none."""
    models = load_manifest(directory)["models"]
    if name not in models:
        known = ", ".join(sorted(models)) or "none"
        raise MissingModelError(
            f"bundled model {name!r} has not been trained/shipped yet: no entry in "
            f"{_manifest_path(Path(directory) if directory else None)} (bundled models: {known})")
    return models[name]


def _record(name: str, entry: dict[str, Any], variant: str | None) -> tuple[str, str]:
    """``(file name, sha256)`` of ``variant`` of a manifest entry: ``None`` is the entry's main
    file (safetensors for networks, the ONNX file for the detector); ``"onnx"`` and
    ``"onnx_int8"`` are sub-records ``{"file": ..., "sha256": ...}``."""
    if variant is None:
        return entry.get("file", f"{name}.safetensors"), str(entry.get("sha256", "")).lower()
    rec = entry.get(variant)
    if not isinstance(rec, dict) or "file" not in rec:
        raise MissingModelError(
            f"bundled model {name!r} has no {variant} file in the manifest; write it with "
            f"`salface models bundle-onnx {name}` (needs the [train] extra)")
    return rec["file"], str(rec.get("sha256", "")).lower()


def bundled_status(name: str, directory: str | os.PathLike | None = None,
                   variant: str | None = None) -> str:
    """``"ok"``, ``"mismatch"`` or ``"missing"`` for a bundled model's file (``variant``: see
    :func:`bundled_file`)."""
    d = Path(directory) if directory else bundled_dir()
    entry = load_manifest(d)["models"].get(name)
    if entry is None:
        return "missing"
    try:
        fname, expected = _record(name, entry, variant)
    except MissingModelError:
        return "missing"
    p = d / fname
    if not p.is_file():
        return "missing"
    return "ok" if sha256_file(p) == expected else "mismatch"


def bundled_file(name: str, variant: str | None = None,
                 directory: str | os.PathLike | None = None) -> Path:
    """Path of a bundled model file after checking its SHA-256 against the manifest.

    ``variant`` ``None`` is the entry's main file (a network's safetensors, the detector's
    ONNX), ``"onnx"`` a network's ONNX export, ``"onnx_int8"`` its INT8-quantised export."""
    d = Path(directory) if directory else bundled_dir()
    entry = bundled_entry(name, d)
    fname, expected = _record(name, entry, variant)
    p = d / fname
    if not p.is_file():
        raise MissingModelError(f"bundled model {name!r} is listed in the manifest but its file "
                                f"{p} is missing: it has not been trained/shipped yet")
    actual = sha256_file(p)
    if actual != expected:
        raise ChecksumError(f"bundled model {name!r} ({p}) fails its checksum: manifest says "
                            f"sha256 {expected}, file has {actual}")
    return p


def bundled_model_path(name: str, directory: str | os.PathLike | None = None) -> Path:
    """Path of bundled model ``name``'s main file (checksum-verified); see :func:`bundled_file`."""
    return bundled_file(name, None, directory)


def detector_file(name: str) -> Path:
    """The verified model file of detector ``name`` (e.g. ``"yunet"``): a copy in the bundle, if
    a custom bundle carries one, else the copy in the cache — installed offline with ``salface
    fetch yunet --from FILE``, or downloaded from its public URL on first use (checked against its
    SHA-256; refused under ``SALFACE_OFFLINE=1``)."""
    try:
        return bundled_file(name)
    except MissingModelError:
        if name not in REMOTE_FILES:
            raise
    return ensure_file(name, progress=False)


def _update_manifest(d: Path, change) -> None:
    """Apply ``change(models)`` to the manifest in folder ``d`` under a lock, written atomically
    (two trainings registering at once must not drop each other's entry)."""
    with _dir_lock(d):
        manifest = load_manifest(d)
        manifest["schema"] = MANIFEST_SCHEMA
        change(manifest["models"])
        manifest["models"] = dict(sorted(manifest["models"].items()))
        fd, tmpname = tempfile.mkstemp(prefix=".manifest.", suffix=".json", dir=d)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=2, sort_keys=False)
            f.write("\n")
        os.chmod(tmpname, 0o644)  # mkstemp makes it private; the manifest is package data
        os.replace(tmpname, _manifest_path(d))


def _copy_into(source: str | os.PathLike, target: Path) -> Path:
    """Copy ``source`` to ``target`` through ``target.part`` and an atomic rename (nothing to do
    when they are the same file)."""
    if Path(source).resolve() != target.resolve():
        tmp = target.with_name(target.name + ".part")
        with open(source, "rb") as fi, open(tmp, "wb") as fo:
            while chunk := fi.read(_CHUNK):
                fo.write(chunk)
        os.replace(tmp, target)
    return target


def register_bundled_file(name: str, variant: str, source: str | os.PathLike, *,
                          extra: dict[str, Any] | None = None,
                          directory: str | os.PathLike | None = None) -> Path:
    """Copy ``source`` into the bundled folder as ``variant`` (``"onnx"`` or ``"onnx_int8"``) of
    the already registered model ``name`` and record its file name and SHA-256 (plus ``extra``,
    e.g. the checks it passed) in the manifest entry."""
    if variant not in ("onnx", "onnx_int8"):
        raise ValueError(f"variant must be 'onnx' or 'onnx_int8', got {variant!r}")
    d = Path(directory) if directory else bundled_dir()
    bundled_entry(name, d)  # the network itself must be registered first
    fname = f"{name}.int8.onnx" if variant == "onnx_int8" else f"{name}.onnx"
    target = _copy_into(source, d / fname)
    record = {"file": fname, "sha256": sha256_file(target), **(extra or {})}

    def put(models: dict[str, Any]) -> None:
        models[name][variant] = record

    _update_manifest(d, put)
    return target


def register_bundled_model(name: str, source: str | os.PathLike, entry: dict[str, Any], *,
                           filename: str | None = None,
                           directory: str | os.PathLike | None = None) -> Path:
    """Copy ``source`` into the bundled folder as the main file of model ``name`` (named
    ``filename``, default the source's name) and write its manifest entry: ``entry`` plus the
    file name and its SHA-256, replacing any earlier entry of that name (other entries are kept;
    the manifest is updated under the folder lock). For models whose main file is not a network's
    safetensors, e.g. a bundled detector's ONNX file."""
    d = Path(directory) if directory else bundled_dir()
    fname = filename or Path(source).name
    target = _copy_into(source, d / fname)
    record = {**entry, "file": fname, "sha256": sha256_file(target)}

    def put(models: dict[str, Any]) -> None:
        models[name] = record

    _update_manifest(d, put)
    return target


def update_bundled_entry(name: str, fields: dict[str, Any], *,
                         directory: str | os.PathLike | None = None) -> dict[str, Any]:
    """Merge ``fields`` into the top level of bundled model ``name``'s manifest entry (which must
    exist; its file and checksum cannot be changed this way) under the folder lock; returns the
    new entry."""
    if {"file", "sha256"} & set(fields):
        raise ValueError("update_bundled_entry cannot change 'file' or 'sha256'; use "
                         "register_bundled_model")
    d = Path(directory) if directory else bundled_dir()
    out: dict[str, Any] = {}

    def merge(models: dict[str, Any]) -> None:
        if name not in models:
            raise MissingModelError(f"bundled model {name!r} has no manifest entry in {d}")
        models[name] = {**models[name], **fields}
        out.update(models[name])

    _update_manifest(d, merge)
    return out


@contextlib.contextmanager
def _dir_lock(directory: Path):
    """An exclusive ``flock`` on the folder itself (POSIX); a no-op where that is unavailable."""
    try:
        import fcntl
        fd = os.open(directory, os.O_RDONLY)
    except (ImportError, OSError):
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def remote_files_info() -> list[dict[str, Any]]:
    """Plain data for every remote file: name, url, sha256, license, path, status."""
    out = []
    for rf in REMOTE_FILES.values():
        d = asdict(rf)
        d["path"] = str(remote_path(rf.name))
        d["status"] = verify_remote(rf.name)
        out.append(d)
    return out


__all__ = [
    "DEFAULT_MODELS", "FAST_MODELS", "ChecksumError", "MissingModelError", "RemoteFile", "REMOTE_FILES", "cache_dir", "remote_path",
    "sha256_file", "download", "ensure_file", "is_installed", "verify_remote", "bundled_dir",
    "load_manifest", "bundled_entry", "bundled_status", "bundled_file", "bundled_model_path",
    "detector_file", "register_bundled_file", "register_bundled_model", "update_bundled_entry",
    "remote_files_info",
]
