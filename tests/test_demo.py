"""`salface demo` runs the whole pipeline on the bundled portrait offline (YuNet installed from a
local file, as `salface fetch yunet --from FILE` does)."""

from __future__ import annotations

import json

from PIL import Image
from typer.testing import CliRunner

from salface.cli import app


def test_demo_offline(tmp_path, monkeypatch, yunet_model):
    from salface.hub import ensure_file

    monkeypatch.setenv("SALFACE_HOME", str(tmp_path / "home"))
    ensure_file("yunet", source=str(yunet_model), progress=False)  # `salface fetch yunet --from`
    monkeypatch.setenv("SALFACE_OFFLINE", "1")
    r = CliRunner().invoke(app, ["demo", "--out", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    result = json.loads(r.stdout[r.stdout.index("{"):r.stdout.rindex("}") + 1])
    assert result["source"].endswith("astronaut.jpg") and len(result["faces"]) == 1
    face = result["faces"][0]
    assert face["expression"]["label"] == "happy"
    assert {face["age"]["label"], face["gender"]["label"]} <= {"0-2", "4-6", "8-13", "15-20", "25-32",
                                                               "38-43", "48-53", "60+", "male", "female"}
    x1, y1, x2, y2 = (face["box"][k] for k in ("x1", "y1", "x2", "y2"))
    assert abs(x1 - 178) < 8 and abs(y1 - 63) < 8 and abs(x2 - 268) < 8 and abs(y2 - 176) < 8
    annotated = Image.open(tmp_path / "out" / "astronaut.jpg")
    triplet = Image.open(tmp_path / "out" / "astronaut_face0.png")
    assert annotated.size == (512, 512) and triplet.width > 2 * triplet.height
