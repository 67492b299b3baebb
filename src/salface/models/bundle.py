"""Reading and writing the bundled safetensors (torch side of the model store, :mod:`salface.hub`).

:func:`load_state_dict` gives a bundled network's tensors after the hub verified the file's
SHA-256; :func:`register_bundled` writes a trained network into the bundle and its manifest entry
(``salface ship``, ``salface train-saliency``). The runtime never needs either: it runs the ONNX
files (:mod:`salface.backends`).
"""

from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path
from typing import Any

from ..hub import _update_manifest, bundled_dir, bundled_entry, bundled_model_path, sha256_file
from ..utils import git_commit


def load_state_dict(name: str, directory: str | os.PathLike | None = None,
                    ) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(tensors, manifest_entry)`` of bundled model ``name``, checksum-verified, on CPU."""
    from safetensors.torch import load_file

    p = bundled_model_path(name, directory)
    return load_file(str(p), device="cpu"), dict(bundled_entry(name, directory))


def register_bundled(name: str, tensors: dict[str, Any], *, kind: str, config: dict[str, Any],
                     metrics: dict[str, Any], data: str, license: str, command: str,
                     directory: str | os.PathLike | None = None) -> Path:
    """Write ``tensors`` as ``<name>.safetensors`` in the bundled folder and merge its manifest entry.

    The entry records the file's SHA-256, ``kind`` (``"saliency"`` or ``"classifier"``), the
    model ``config``, ``metrics``, ``data`` description, ``license``, today's date (UTC), the git
    commit (``git rev-parse HEAD``, when available) and the ``command`` that produced it. Other
    models' entries are kept. Both files are written atomically.
    """
    from safetensors.torch import save_file

    if kind not in ("saliency", "classifier"):
        raise ValueError(f"kind must be 'saliency' or 'classifier', got {kind!r}")
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"invalid model name {name!r}")
    d = Path(directory) if directory else bundled_dir()
    d.mkdir(parents=True, exist_ok=True)
    fname = f"{name}.safetensors"
    target = d / fname
    tmp = target.with_name(fname + ".part")
    contiguous = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    save_file(contiguous, str(tmp), metadata={"name": name, "kind": kind})
    os.replace(tmp, target)
    entry = {
        "file": fname,
        "sha256": sha256_file(target),
        "kind": kind,
        "config": config,
        "metrics": metrics,
        "data": data,
        "license": license,
        "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d"),
        "commit": git_commit(short=False, default=None),
        "command": command,
    }

    def put(models: dict[str, Any]) -> None:
        # a re-shipped network's old ONNX exports describe the old weights: they are dropped
        models[name] = entry

    _update_manifest(d, put)
    return target


__all__ = ["load_state_dict", "register_bundled"]
