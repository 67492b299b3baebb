"""salface.utils: the shared helpers (commit, command line, device, atomic writes, locks, imports)."""

from __future__ import annotations

import json
import sys
import threading
import time

import pytest

from salface import utils
from salface.errors import DependencyError, SalfaceError


def test_git_commit_prefers_the_commit_given_with_a_copied_tree(monkeypatch):
    """A tree copied to another machine may carry a stale .git: the commit given wins."""
    monkeypatch.setenv("SALFACE_COMMIT", "abc1234")
    assert utils.git_commit() == "abc1234"
    monkeypatch.delenv("SALFACE_COMMIT")
    short, full = utils.git_commit(), utils.git_commit(short=False, default=None)
    assert short != "abc1234"
    if full is not None:                 # a checkout: the short commit starts the full one
        assert len(full) == 40 and full.startswith(short)


def test_git_commit_default_outside_a_repository(monkeypatch):
    monkeypatch.delenv("SALFACE_COMMIT", raising=False)
    monkeypatch.setattr(utils.subprocess, "run", lambda *a, **k: (_ for _ in ()).throw(OSError("no git")))
    assert utils.git_commit() == "unknown"
    assert utils.git_commit(default=None) is None


def test_command_line_quotes_what_a_shell_would_split(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["salface", "evaluate", "runs/a b", "--out", "x;y"])
    assert utils.command_line() == "salface evaluate 'runs/a b' --out 'x;y'"
    assert utils.command_line("python t.py", ["1", "2"]) == "python t.py 1 2"


def test_resolve_device(monkeypatch):
    torch = pytest.importorskip("torch")
    from salface.backends.torch import resolve_device
    assert resolve_device("cpu") == "cpu"
    with pytest.raises(ValueError, match="'gpu'"):
        resolve_device("gpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu"
    with pytest.raises(RuntimeError, match="no CUDA device"):
        resolve_device("cuda:0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == "cuda"
    assert resolve_device("cuda:1") == "cuda:1"


def test_atomic_writes(tmp_path):
    p = tmp_path / "sub" / "r.json"
    utils.atomic_write_json(p, {"a": 1})
    assert json.loads(p.read_text()) == {"a": 1} and p.read_text().endswith("\n")
    utils.atomic_write_text(p, "old")
    # an object that cannot be serialised: nothing is written, the old file stays
    with pytest.raises(TypeError):
        utils.atomic_write_json(p, {"a": object()})
    assert p.read_text() == "old"
    # a writer that fails half-way: the old file stays and no temporary file is left behind
    with pytest.raises(RuntimeError):
        with utils.atomic_path(p) as tmp:
            tmp.write_text("half")
            raise RuntimeError("disk full")
    assert p.read_text() == "old"
    utils.atomic_write_bytes(tmp_path / "b.bin", b"\x00\x01")
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    with utils.atomic_path(tmp_path / "c.npy", suffix=".npy") as tmp:
        assert tmp.name.endswith(".npy") and tmp.parent == tmp_path
        tmp.write_bytes(b"c")
    assert sorted(f.name for f in tmp_path.iterdir()) == ["b.bin", "c.npy", "sub"]
    assert [f.name for f in (tmp_path / "sub").iterdir()] == ["r.json"]


def test_file_lock_makes_a_second_holder_wait(tmp_path):
    events: list[str] = []
    msgs: list[str] = []

    def second():
        with utils.file_lock(tmp_path / "locks" / "x.lock", "run x", msgs.append):
            events.append("second in")

    with utils.file_lock(tmp_path / "locks" / "x.lock", "run x", msgs.append):
        th = threading.Thread(target=second)
        th.start()
        time.sleep(0.3)
        events.append("first out")
    th.join(5)
    assert events == ["first out", "second in"]
    assert msgs == ["waiting: another process is working on run x"]


def test_optional_import_names_the_extra(monkeypatch):
    assert utils.optional_import("json", "train") is json
    for name in ("scipy", "scipy.optimize"):                 # makes the import raise ImportError
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(DependencyError, match=r"fitting a temperature needs scipy, which is not installed: "
                                              r"pip install salface\[train\]") as e:
        utils.optional_import("scipy.optimize", "train", "fitting a temperature")
    assert isinstance(e.value, ImportError) and isinstance(e.value, SalfaceError)
