"""Small helpers every part of salface shares, each written once.

* :func:`git_commit` — the commit of the code that runs (``$SALFACE_COMMIT`` wins);
* :func:`machine` — one line naming the CPU, cores, GPU, OS, Python and torch, for reports;
* :func:`command_line` — the current command as a shell could re-run it;

* :func:`atomic_path`, :func:`atomic_write_bytes`, :func:`atomic_write_text`,
  :func:`atomic_write_json` — write beside the target, then :func:`os.replace` it into place, so a
  reader never sees a half-written file and a failed write leaves the old one untouched;
* :func:`file_lock` — an exclusive POSIX ``flock`` held for a ``with`` block;
* :func:`optional_import` — import an optional dependency, or raise
  :class:`~salface.errors.DependencyError` naming the pip extra that installs it.

This module imports only the standard library (torch is imported inside the functions that need
it), so the runtime can use it without pulling in anything heavy.
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import secrets
import shlex
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterator

from .errors import DependencyError

# ------------------------------------------------------------------------------------ provenance


def git_commit(*, short: bool = True, default: str | None = "unknown") -> str | None:
    """The commit of the code that runs: ``$SALFACE_COMMIT`` when set (a copy of the tree sent to
    another machine, e.g. a lent GPU, may carry no git repository or a stale one), else the commit
    of the checkout this package lives in (abbreviated with ``short``), else ``default``."""
    given = os.environ.get("SALFACE_COMMIT", "").strip()
    if given:
        return given
    cmd = ["git", "rev-parse", *(["--short"] if short else []), "HEAD"]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10,
                             cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.SubprocessError):
        return default
    return (out.stdout.strip() if out.returncode == 0 else "") or default


def machine() -> str:
    """CPU model, cores, GPU (when a loaded torch sees one), OS, Python and torch version (when
    the process has loaded it), in one line."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    parts = [cpu, f"{os.cpu_count()} cores"]
    torch = sys.modules.get("torch")  # described when loaded; never imported just for this
    if torch is not None and torch.cuda.is_available():
        parts[-1] += f", GPU {torch.cuda.get_device_name(0)}"
    parts += [f"{platform.system()} {platform.release()}", f"Python {platform.python_version()}"]
    if torch is not None:
        parts.append(f"torch {torch.__version__}")
    return ", ".join(parts)


def command_line(prog: str = "salface", argv: list[str] | None = None) -> str:
    """``prog`` followed by the arguments of this invocation (``sys.argv[1:]`` unless ``argv``
    is given), each quoted so that a shell reads it back as the same argument."""
    args = sys.argv[1:] if argv is None else argv
    return " ".join([prog, *(shlex.quote(a) for a in args)])


# ------------------------------------------------------------------------------------ device


# ------------------------------------------------------------------------------------ files


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """A fresh temporary path in the folder of ``path`` (created if needed) for the ``with`` block
    to write; when the block ends without an error the file is moved over ``path`` with
    :func:`os.replace` (atomic on POSIX and Windows), otherwise it is removed and ``path`` is left
    as it was. ``suffix`` ends the temporary name, for writers that add or expect an extension
    (``np.save`` adds ``.npy`` to a name without it)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp{suffix}")
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`); returns the path."""
    with atomic_path(path) as tmp:
        with open(tmp, "xb") as fh:
            fh.write(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_path`); returns the path."""
    return atomic_write_bytes(path, text.encode(encoding))


def atomic_write_json(path: str | os.PathLike, obj: Any, *, indent: int | None = 1,
                      default: Callable[[Any], Any] | None = None, **dumps_kw: Any) -> Path:
    """``json.dumps(obj, indent=indent, default=default, **dumps_kw)`` + a newline, written to
    ``path`` atomically. The object is serialised before anything is written, so an object that
    cannot be serialised leaves ``path`` untouched."""
    return atomic_write_text(path, json.dumps(obj, indent=indent, default=default, **dumps_kw) + "\n")


@contextmanager
def file_lock(path: str | os.PathLike, what: str = "", log: Callable[[str], None] = print) -> Iterator[None]:
    """An exclusive advisory lock on the file ``path`` (POSIX ``flock``; the file and its folder
    are created if needed) held for the ``with`` block, so that two processes never do the same
    work at once: the second one logs ``waiting: another process is working on <what>``, waits,
    and then usually finds the work done. A no-op where ``fcntl`` does not exist (Windows)."""
    try:
        import fcntl
    except ImportError:          # pragma: no cover - not POSIX
        yield
        return
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"waiting: another process is working on {what or p}")
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# ------------------------------------------------------------------------------------ imports


def optional_import(module: str, extra: str, purpose: str = "") -> ModuleType:
    """``importlib.import_module(module)``, or — when it (or something it needs) is not installed —
    a :class:`~salface.errors.DependencyError` (an ``ImportError``) that says what needs it
    (``purpose``, default the module's name), which package is missing and the command that
    installs it: ``pip install salface[<extra>]``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        missing = (exc.name or module).split(".")[0]
        raise DependencyError(f"{purpose or module} needs {missing}, which is not installed: "
                              f"pip install salface[{extra}]") from exc


__all__ = ["git_commit", "machine", "command_line", "atomic_path", "atomic_write_bytes",
           "atomic_write_text", "atomic_write_json", "file_lock", "optional_import"]
