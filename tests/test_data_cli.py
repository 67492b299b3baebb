"""``salface datasets`` and ``salface splits`` on a small tree in FER+'s layout."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from salface.cli import app


def test_datasets_lists_every_reader():
    res = CliRunner().invoke(app, ["datasets"])
    assert res.exit_code == 0, res.output
    for name in ("ferplus", "fer2013", "utkface", "adience", "affectnet", "lfw", "csv", "folder"):
        assert f"\n{name} " in "\n" + res.output


def test_splits_command(tmp_path):
    root = tmp_path / "shared" / "data" / "ferplus"
    votes = {"FER2013Train": [[0, 9] + [0] * 8, [9, 1] + [0] * 8], "FER2013Valid": [[0, 0, 0, 8, 2] + [0] * 5],
             "FER2013Test": [[0, 0, 7, 0, 0, 0, 0, 3, 0, 0]]}
    k = 0
    for folder, rows in votes.items():
        (root / folder).mkdir(parents=True)
        lines = []
        for v in rows:
            k += 1
            Image.fromarray(np.full((48, 48), k * 20, np.uint8)).save(root / folder / f"f{k}.png")
            lines.append(f'f{k}.png,"(0, 0, 48, 48)",' + ",".join(map(str, v)))
        (root / folder / "label.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "splits"
    res = CliRunner().invoke(app, ["splits", "ferplus", "--shared", str(tmp_path / "shared"), "--out", str(out), "-q"])
    assert res.exit_code == 0, res.output
    assert "train: 2" in res.output and "expression: neutral 1, happy 1" in res.output
    assert "test: 1" in res.output and "surprise 1" in res.output
    recs = [json.loads(line) for line in (out / "ferplus.jsonl").read_text().splitlines()]
    assert [r["split"] for r in recs] == ["train", "train", "val", "test"]
    bad = CliRunner().invoke(app, ["splits", "celeba"])
    assert bad.exit_code == 2
    missing = CliRunner().invoke(app, ["splits", "ferplus", "--shared", str(tmp_path / "none"), "--out", str(out)])
    assert missing.exit_code == 1 and "FER2013Train" in missing.output
