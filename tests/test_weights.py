"""Weights store: cache dir, checksums, downloads (local HTTP server, file://), bundled manifest."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import shutil
import threading

import pytest

from salface import hub as W
from salface.models import bundle as B


@pytest.fixture(autouse=True)
def _own_home(tmp_path, monkeypatch):
    """A cache dir per test (conftest's is shared by the whole session)."""
    monkeypatch.setenv("SALFACE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SALFACE_OFFLINE", raising=False)


@pytest.fixture
def http_dir(tmp_path):
    """Serve a fresh tmp folder over HTTP on 127.0.0.1 (ephemeral port) in a thread."""
    root = tmp_path / "served"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *a):
            pass

    handler = functools.partial(Quiet, directory=str(root))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    try:
        yield root, f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.fixture
def fake_remote(monkeypatch):
    """Register a small remote file 'tiny' whose bytes and checksum the test knows."""
    payload = b"salface test model\n" * 1000
    digest = hashlib.sha256(payload).hexdigest()
    rf = W.RemoteFile(name="tiny", url="http://127.0.0.1:9/unused", sha256=digest,
                      filename="tiny.bin", license="test")
    monkeypatch.setitem(W.REMOTE_FILES, "tiny", rf)
    return payload, digest


def test_cache_dir_env(tmp_path, monkeypatch):
    target = tmp_path / "home" / "nested"
    monkeypatch.setenv("SALFACE_HOME", str(target))
    assert W.cache_dir() == target and target.is_dir()
    monkeypatch.delenv("SALFACE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert W.cache_dir() == tmp_path / "user" / ".cache" / "salface"


def test_sha256_file_known_value(tmp_path):
    p = tmp_path / "abc.txt"
    p.write_bytes(b"abc")
    # FIPS 180-2 test vector
    assert W.sha256_file(p) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_download_http_ok(http_dir, tmp_path):
    root, base = http_dir
    (root / "m.bin").write_bytes(b"hello" * 100)
    digest = hashlib.sha256(b"hello" * 100).hexdigest()
    dest = tmp_path / "out" / "m.bin"
    assert W.download(f"{base}/m.bin", dest, digest, progress=False) == dest
    assert dest.read_bytes() == b"hello" * 100
    assert not (tmp_path / "out" / "m.bin.part").exists()


def test_download_wrong_checksum_leaves_nothing(http_dir, tmp_path):
    root, base = http_dir
    (root / "m.bin").write_bytes(b"tampered")
    dest = tmp_path / "out" / "m.bin"
    expected = "0" * 64
    with pytest.raises(W.ChecksumError) as ei:
        W.download(f"{base}/m.bin", dest, expected, progress=False)
    msg = str(ei.value)
    assert f"{base}/m.bin" in msg and expected in msg and hashlib.sha256(b"tampered").hexdigest() in msg
    assert list((tmp_path / "out").iterdir()) == []


def test_download_404(http_dir, tmp_path):
    _, base = http_dir
    dest = tmp_path / "out" / "x.bin"
    with pytest.raises(W.MissingModelError, match="HTTP 404"):
        W.download(f"{base}/missing.bin", dest, "0" * 64, progress=False)
    assert not dest.exists() and not dest.with_name("x.bin.part").exists()


def test_download_refuses_network_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("SALFACE_OFFLINE", "1")
    with pytest.raises(W.MissingModelError, match="SALFACE_OFFLINE"):
        W.download("https://example.invalid/x", tmp_path / "x", None, progress=False)


def test_ensure_file_from_http_and_checksum_on_every_call(http_dir, fake_remote, monkeypatch):
    payload, digest = fake_remote
    root, base = http_dir
    (root / "tiny.bin").write_bytes(payload)
    monkeypatch.setitem(W.REMOTE_FILES, "tiny", W.RemoteFile(
        "tiny", f"{base}/tiny.bin", digest, "tiny.bin", "test"))
    p = W.ensure_file("tiny", progress=False)
    assert p == W.remote_path("tiny") and W.sha256_file(p) == digest
    assert W.verify_remote("tiny") == "ok"
    # corrupt the cached copy: the next call must refuse it
    p.write_bytes(payload[:-1] + b"!")
    assert W.verify_remote("tiny") == "mismatch"
    with pytest.raises(W.ChecksumError, match="corrupt"):
        W.ensure_file("tiny", progress=False)
    # an explicit source repairs it
    W.ensure_file("tiny", source=f"{base}/tiny.bin", progress=False)
    assert W.verify_remote("tiny") == "ok"


def test_ensure_file_local_path_and_file_url(tmp_path, fake_remote):
    payload, digest = fake_remote
    src = tmp_path / "src" / "tiny.bin"
    src.parent.mkdir()
    src.write_bytes(payload)
    assert W.verify_remote("tiny") == "missing"
    p = W.ensure_file("tiny", source=str(src), progress=False)
    assert p.read_bytes() == payload
    p.unlink()
    p2 = W.ensure_file("tiny", source=src.as_uri(), progress=False)
    assert p2 == p and p.read_bytes() == payload


def test_ensure_file_wrong_local_source(tmp_path, fake_remote):
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"not the model")
    with pytest.raises(W.ChecksumError):
        W.ensure_file("tiny", source=str(bad), progress=False)
    assert W.verify_remote("tiny") == "missing"
    assert not any(W.remote_path("tiny").parent.glob("*.part"))
    with pytest.raises(W.MissingModelError, match="not found"):
        W.ensure_file("tiny", source=str(tmp_path / "nope.bin"), progress=False)


def test_ensure_file_offline_message(monkeypatch, fake_remote):
    monkeypatch.setenv("SALFACE_OFFLINE", "1")
    with pytest.raises(W.MissingModelError) as ei:
        W.ensure_file("tiny")
    msg = str(ei.value)
    assert "SALFACE_OFFLINE" in msg and "salface fetch tiny --from" in msg
    with pytest.raises(W.MissingModelError, match="not installed"):
        monkeypatch.delenv("SALFACE_OFFLINE")
        W.ensure_file("tiny", download_ok=False)


def test_unknown_remote():
    with pytest.raises(KeyError, match="unknown remote model"):
        W.ensure_file("no-such-model")


def test_yunet_from_shared(yunet_model, tmp_path):
    assert W.sha256_file(yunet_model) == W.REMOTE_FILES["yunet"].sha256
    p = W.ensure_file("yunet", source=str(yunet_model), progress=False)
    assert p.parent.parent.parent == W.cache_dir()
    # a corrupted copy of the real model is an error
    bad = tmp_path / "yunet_bad.onnx"
    shutil.copyfile(yunet_model, bad)
    with open(bad, "r+b") as f:
        f.seek(1000)
        f.write(b"\xff\x00\xff")
    assert W.sha256_file(bad) != W.REMOTE_FILES["yunet"].sha256
    p.unlink()
    with pytest.raises(W.ChecksumError):
        W.ensure_file("yunet", source=str(bad), progress=False)


# ------------------------------------------------------------------ bundled


@pytest.fixture
def bundled(tmp_path, monkeypatch):
    d = tmp_path / "bundled"
    d.mkdir()
    monkeypatch.setenv("SALFACE_BUNDLED_DIR", str(d))
    return d


def test_missing_manifest_is_empty(bundled):
    assert W.load_manifest() == {"schema": 1, "models": {}}
    with pytest.raises(W.MissingModelError, match="'expr' has not been trained/shipped yet"):
        W.bundled_model_path("expr")


def test_register_and_load_roundtrip(bundled):
    torch = pytest.importorskip("torch")
    # a pre-existing entry of another model must survive
    (bundled / "manifest.json").write_text(json.dumps(
        {"schema": 1, "models": {"other": {"file": "other.safetensors", "sha256": "0" * 64,
                                           "kind": "saliency"}}}))
    t = {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3), "b": torch.tensor([1, 2])}
    p = B.register_bundled("agegender", t, kind="classifier", config={"backbone": "mobilenet_v2"},
                           metrics={"acc": 0.5}, data="utkface", license="non-commercial",
                           command="salface train x")
    assert p == bundled / "agegender.safetensors"
    m = W.load_manifest()
    assert set(m["models"]) == {"agegender", "other"}
    e = m["models"]["agegender"]
    assert e["sha256"] == W.sha256_file(p) and e["kind"] == "classifier"
    assert e["config"] == {"backbone": "mobilenet_v2"} and e["command"] == "salface train x"
    assert len(e["created"]) == 10 and e["created"][4] == "-"
    assert e["commit"] is None or len(e["commit"]) == 40
    tensors, entry = B.load_state_dict("agegender")
    assert torch.equal(tensors["w"], t["w"]) and torch.equal(tensors["b"], t["b"])
    assert entry["metrics"] == {"acc": 0.5}
    assert W.bundled_status("agegender") == "ok"
    assert W.bundled_status("other") == "missing"
    with pytest.raises(W.MissingModelError, match="file .* is missing"):
        W.bundled_model_path("other")


def test_bundled_checksum_mismatch(bundled):
    torch = pytest.importorskip("torch")
    p = B.register_bundled("sal", {"x": torch.zeros(100)}, kind="saliency", config={}, metrics={},
                           data="nus", license="MIT", command="c")
    data = bytearray(p.read_bytes())
    data[-1] ^= 0xFF  # flip bits in the last tensor byte
    p.write_bytes(bytes(data))
    assert W.bundled_status("sal") == "mismatch"
    with pytest.raises(W.ChecksumError, match="fails its checksum"):
        B.load_state_dict("sal")


def test_register_rejects_bad_kind(bundled):
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError, match="kind"):
        B.register_bundled("x", {"a": torch.zeros(1)}, kind="detector", config={}, metrics={},
                           data="", license="", command="")


def test_invalid_manifest(bundled):
    (bundled / "manifest.json").write_text("{not json")
    with pytest.raises(RuntimeError, match="invalid manifest JSON"):
        W.load_manifest()


def test_package_manifest_entries_verify(monkeypatch):
    """Every model shipped in the package's own bundled folder passes its checksum."""
    monkeypatch.delenv("SALFACE_BUNDLED_DIR", raising=False)
    for name in W.load_manifest()["models"]:
        assert W.bundled_status(name) in ("ok", "missing"), name


# ------------------------------------------------------------------ CLI


def test_cli_models_and_fetch(yunet_model, bundled, tmp_path):
    torch = pytest.importorskip("torch")
    from typer.testing import CliRunner

    from salface.cli import app

    B.register_bundled("sal", {"x": torch.zeros(3)}, kind="saliency", config={}, metrics={},
                       data="nus", license="MIT", command="c")
    B.register_bundled("expr", {"x": torch.ones(3)}, kind="classifier",
                       config={"tasks": ["expression"]}, metrics={}, data="ferplus",
                       license="research", command="c")
    runner = CliRunner()
    r = runner.invoke(app, ["models", "--json"])
    assert r.exit_code == 0, r.output
    rows = {m["name"]: m for m in json.loads(r.output)["models"]}
    assert rows["sal"]["status"] == "ok" and rows["expr"]["tasks"] == ["expression"]
    assert rows["yunet"]["status"] == "not installed"
    assert rows["expr"]["default_for"] == []          # not a name DEFAULT_MODELS points at

    r = runner.invoke(app, ["fetch", "yunet", "--from", str(yunet_model), "--no-progress"])
    assert r.exit_code == 0, r.output
    assert "verified" in r.output and W.verify_remote("yunet") == "ok"

    r = runner.invoke(app, ["models"])
    assert r.exit_code == 0 and "yunet" in r.output and "installed" in r.output

    # a corrupted bundled file turns the listing into an error (exit 1) that names it
    p = bundled / "sal.safetensors"
    p.write_bytes(p.read_bytes()[:-1] + b"\x01")
    r = runner.invoke(app, ["models", "--json"])
    assert r.exit_code == 1
    assert {m["name"]: m["status"] for m in json.loads(r.output)["models"]}["sal"] == "mismatch"


def test_cli_fetch_errors(tmp_path):
    from typer.testing import CliRunner

    from salface.cli import app

    runner = CliRunner()
    r = runner.invoke(app, ["fetch", "nope"])
    assert r.exit_code == 2 and "unknown model" in r.output
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"garbage")
    r = runner.invoke(app, ["fetch", "yunet", "--from", str(bad), "--no-progress"])
    assert r.exit_code == 1 and "checksum mismatch" in r.output
    assert W.verify_remote("yunet") == "missing"


def test_register_concurrent_keeps_all_entries(bundled):
    torch = pytest.importorskip("torch")
    names = [f"m{i}" for i in range(8)]

    def reg(n):
        B.register_bundled(n, {"x": torch.zeros(4)}, kind="saliency", config={}, metrics={},
                           data="", license="", command="")

    threads = [threading.Thread(target=reg, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(W.load_manifest()["models"]) == set(names)


def test_models_listing_marks_the_default_per_task():
    from salface.cli.models import model_rows

    rows = {r["name"]: r for r in model_rows()}
    for task, name in W.DEFAULT_MODELS.items():
        if name in rows:
            assert task in rows[name]["default_for"]
    if "age-gender-ensemble" in rows:   # age and gender: one ensemble of two networks since session 8
        assert rows["age-gender-ensemble"]["default_for"] == ["age", "gender"]
        assert rows["default-age-gender"]["default_for"] == []
