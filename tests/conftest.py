"""Shared fixtures. Data from ../shared is read by path; tests needing it skip when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SALFACE_SHARED", ROOT.parent / "shared"))


def shared_path(*parts: str) -> Path:
    """Path inside ../shared, skipping the calling test when it is missing."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"../shared data not available: {p}")
    return p


@pytest.fixture
def shared():
    return shared_path


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    skimage_data = pytest.importorskip("skimage.data")
    return np.ascontiguousarray(skimage_data.astronaut())


@pytest.fixture(scope="session")
def yunet_model() -> Path:
    return shared_path("weights", "yunet", "face_detection_yunet_2023mar.onnx")


@pytest.fixture(scope="session", autouse=True)
def _offline_torch_hub(tmp_path_factory):
    """Let torchvision find the ImageNet MobileNetV2 weights from ../shared offline, the standard
    way (``$TORCH_HOME/hub/checkpoints``), unless the user already has a torch cache set up."""
    src = SHARED / "weights" / "imagenet" / "mobilenet_v2-b0353104.pth"
    if os.environ.get("TORCH_HOME") or not src.exists():
        yield
        return
    home = tmp_path_factory.mktemp("torch_home")
    (home / "hub" / "checkpoints").mkdir(parents=True)
    (home / "hub" / "checkpoints" / src.name).symlink_to(src)
    os.environ["TORCH_HOME"] = str(home)
    yield
    os.environ.pop("TORCH_HOME", None)


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Each test gets its own salface cache dir, so nothing leaks from the user's machine."""
    home = tmp_path_factory.getbasetemp() / "salface_home"
    home.mkdir(exist_ok=True)
    if not os.environ.get("SALFACE_TEST_KEEP_HOME"):
        monkeypatch.setenv("SALFACE_HOME", str(home))
        # YuNet is not in the repository: install ../shared's copy into this cache once, the way a
        # user installs it offline (`salface fetch yunet --from ...`); tests that need it take the
        # `yunet_model` fixture and skip without ../shared
        src = SHARED / "weights" / "yunet" / "face_detection_yunet_2023mar.onnx"
        if src.exists() and not (home / "models" / "yunet" / src.name).exists():
            from salface.hub import ensure_file

            ensure_file("yunet", source=str(src), progress=False)


@pytest.fixture
def gender_toy_run(tmp_path, monkeypatch) -> Path:
    """A gender-only toy run folder (randomly initialised MobileNetV2, :func:`toys.gender_run`):
    the teacher of the distillation tests, the reference of the label-audit tests."""
    pytest.importorskip("torch")
    from toys import gender_run

    return gender_run(tmp_path, monkeypatch, "toy-gender")


@pytest.fixture
def scratch_bundle(tmp_path, monkeypatch):
    """A copy of the bundled manifest (no weight files) that the CLI edits instead of the package's."""
    import shutil

    from salface import hub as W

    d = tmp_path / "bundle"
    shutil.copytree(W.bundled_dir(), d, ignore=shutil.ignore_patterns("*.safetensors", "*.onnx"))
    monkeypatch.setenv("SALFACE_BUNDLED_DIR", str(d))
    return W


@pytest.fixture
def cli():
    """Run the ``salface`` command line in-process: ``cli("models", "set-align", ...)``."""
    from typer.testing import CliRunner

    from salface.cli import app

    return lambda *args: CliRunner().invoke(app, list(args))
