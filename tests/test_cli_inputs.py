"""`salface analyze` with bad arguments among good ones: a missing path, an empty folder or a glob
without match is an error row for that argument in every output format, the other inputs are
analysed, and the exit code is 1. Uses the `whole` detector without a classifier (no models)."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from salface.cli import app

BASE = ["analyze", "--detector", "whole", "--detect-only", "--no-progress"]


@pytest.fixture
def args(tmp_path):
    good = tmp_path / "good.png"
    Image.fromarray(np.full((64, 48, 3), 90, np.uint8)).save(good)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    return [str(good), str(tmp_path / "missing.jpg"), str(tmp_path / "empty"),
            str(tmp_path / "nothing*.png")]


def _run(args, fmt, tmp_path):
    out = tmp_path / f"out.{fmt}"
    res = CliRunner().invoke(app, [*BASE, *args, "-f", fmt, "-o", str(out)])
    return res, out.read_text()


def test_json(args, tmp_path):
    res, text = _run(args, "json", tmp_path)
    assert res.exit_code == 1, res.output
    data = json.loads(text)
    assert [d["source"] for d in data] == args                     # argument order
    assert data[0]["width"] == 48 and len(data[0]["faces"]) == 1 and "error" not in data[0]
    assert data[1]["error"] == "no such file or folder"
    assert data[2]["error"].startswith("folder contains no image files")
    assert data[3]["error"] == "pattern matches no files"
    assert all(d["faces"] == [] for d in data[1:])


def test_jsonl(args, tmp_path):
    res, text = _run(args, "jsonl", tmp_path)
    assert res.exit_code == 1, res.output
    lines = [json.loads(x) for x in text.splitlines()]
    assert [("error" in x) for x in lines] == [False, True, True, True]


def test_csv(args, tmp_path):
    res, text = _run(args, "csv", tmp_path)
    assert res.exit_code == 1, res.output
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["source"] for r in rows] == args
    assert rows[0]["face"] == "0" and rows[0]["x2"] == "48.0" and rows[0]["error"] == ""
    assert rows[1]["error"] == "no such file or folder" and rows[1]["face"] == ""


def test_good_inputs_exit_0_and_repeats_count_once(args, tmp_path):
    res = CliRunner().invoke(app, [*BASE, args[0], str(tmp_path / "*.png")])
    assert res.exit_code == 0, res.output
    assert len(json.loads(res.stdout)) == 1


def test_nothing_to_analyse_is_a_usage_error(args, tmp_path):
    res = CliRunner().invoke(app, [*BASE, *args[1:]])
    assert res.exit_code == 2
    assert len(json.loads(res.stdout)) == 3          # the error rows are still written
    assert CliRunner().invoke(app, BASE).exit_code == 2    # no arguments at all
