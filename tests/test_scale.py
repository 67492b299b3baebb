"""salface.scale on a local Ray cluster: the same answers as one process's Analyzer.analyze_batch,
error rows for bad inputs, and every input kind (folders, globs, Parquet of bytes, JSONL lists)."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")
pq = pytest.importorskip("pyarrow.parquet")

from conftest import SHARED  # noqa: E402
from salface import scale  # noqa: E402
from salface.io import iter_image_paths  # noqa: E402

N_UTK = 4


@pytest.fixture(scope="module")
def ray_local(tmp_path_factory):
    """A local Ray cluster of two CPUs; its workers use the tests' salface cache (conftest)."""
    if ray.is_initialized():
        yield
        return
    home = str(tmp_path_factory.getbasetemp() / "salface_home")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING",
             runtime_env={"env_vars": {"OMP_WAIT_POLICY": "PASSIVE", "SALFACE_HOME": home}})
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """The astronaut, a few UTKFace images (when ../shared is there), garbage and an empty file."""
    skimage_io = pytest.importorskip("skimage.io")
    skimage_data = pytest.importorskip("skimage.data")
    d = tmp_path_factory.mktemp("scale_images")
    skimage_io.imsave(d / "astronaut.png", skimage_data.astronaut())
    utk = SHARED / "data" / "utkface"
    if utk.is_dir():
        for f in sorted(utk.glob("*.jpg"))[:N_UTK]:
            shutil.copy(f, d / f.name)
    (d / "garbage.jpg").write_bytes(np.random.default_rng(0).integers(0, 256, 700, np.uint8)
                                    .tobytes())
    (d / "empty.png").write_bytes(b"")
    return d


@pytest.fixture(scope="module")
def analyzer_kwargs():
    yunet = SHARED / "weights" / "yunet" / "face_detection_yunet_2023mar.onnx"
    if not yunet.exists():
        pytest.skip(f"../shared data not available: {yunet}")
    from salface.models.registry import DEFAULT_MODELS, list_classifiers

    if not set(DEFAULT_MODELS.values()) <= set(list_classifiers()):
        pytest.skip("shipped classifiers not installed")
    return {"detector": "yunet", "detector_options": {"model_path": str(yunet)}, "batch_size": 3}


@pytest.fixture(scope="module")
def reference(folder, analyzer_kwargs):
    """Single-process results, by source name."""
    from salface.pipeline import Analyzer

    an = Analyzer(**analyzer_kwargs)
    return {r.source: r for r in an.analyze_batch(iter_image_paths([str(folder)]))}


def assert_same(row: dict, ref) -> None:
    """One output row against the single-process ImageResult: labels equal, probabilities 1e-6."""
    if ref.error is not None:
        assert row["error"] == ref.error and row["faces"] == [] and row["n_faces"] == 0
        return
    assert row["error"] is None
    assert (row["width"], row["height"], row["n_faces"]) == (ref.width, ref.height, len(ref.faces))
    for got, want in zip(row["faces"], ref.faces):
        assert got["box"] == want.face.box.to_dict()
        assert got["score"] == pytest.approx(want.face.score, abs=1e-4)
        for task, p in want.predictions().items():
            assert got[task]["label"] == p.label
            assert set(got[task]["probabilities"]) == set(p.probabilities)
            for k, v in p.probabilities.items():
                assert got[task]["probabilities"][k] == pytest.approx(v, abs=1e-6), (task, k)


def test_folder_on_two_workers_matches_one_process(ray_local, folder, analyzer_kwargs, reference,
                                                   tmp_path):
    out = tmp_path / "results.parquet"
    summary = scale.analyze_dataset([str(folder), str(folder / "missing*.jpg")], out,
                                    analyzer_kwargs=analyzer_kwargs, num_workers=2, batch_size=2)
    rows = {r["source"]: r for r in scale.read_results(out)}
    pattern = str(folder / "missing*.jpg")
    assert set(rows) == set(reference) | {pattern}
    assert rows[pattern]["error"] == "pattern matches no files"
    for src, ref in reference.items():
        assert_same(rows[src], ref)
    # known answers: the bad files are error rows with their reasons; the astronaut is one happy face
    assert rows[str(folder / "empty.png")]["error"] == "empty file (0 bytes)"
    assert rows[str(folder / "garbage.jpg")]["error"] == "not a recognised image format"
    astro = rows[str(folder / "astronaut.png")]
    assert astro["n_faces"] == 1 and astro["faces"][0]["expression"]["label"] == "happy"
    n_good = len(reference) - 2
    assert (summary.images, summary.errors, summary.workers) == (len(reference) + 1, 3, 2)
    assert summary.faces == sum(len(r.faces) for r in reference.values()) >= n_good
    assert pq.read_schema(out).names == list(scale.OUTPUT_COLUMNS)
    assert not (tmp_path / "results.parquet.partial").exists()


def test_parquet_bytes_and_jsonl_lists(ray_local, folder, analyzer_kwargs, reference, tmp_path):
    files = sorted(reference)
    # a self-contained Parquet: the images' bytes, named by their paths
    pq.write_table(scale.bytes_table(files), tmp_path / "images.parquet")
    # a JSONL list with relative paths, an object line, a bad line and a missing file
    lines = [json.dumps(os.path.relpath(f, tmp_path)) for f in files[:2]]
    lines += [json.dumps({"path": files[2]}), "{not json", "", json.dumps("nowhere.jpg")]
    (tmp_path / "list.jsonl").write_text("\n".join(lines) + "\n")
    out = tmp_path / "results.jsonl"
    summary = scale.analyze_dataset([str(tmp_path / "images.parquet"), str(tmp_path / "list.jsonl")],
                                    out, analyzer_kwargs=analyzer_kwargs, num_workers=2,
                                    batch_size=3)
    rows = scale.read_results(out)
    assert summary.images == len(rows) == len(files) + 5
    by_source: dict[str, list[dict]] = {}
    for r in rows:
        by_source.setdefault(r["source"], []).append(r)
    for f in files:  # the Parquet's rows, named by the path column
        assert_same(by_source[f][0], reference[f])
    for f in files[:2]:  # JSONL: the source is the path as the list spells it
        rel = os.path.relpath(f, tmp_path)
        assert len(by_source[rel]) == 1
        assert_same(by_source[rel][0], reference[f])
    assert len(by_source[files[2]]) == 2
    assert_same(by_source[files[2]][1], reference[files[2]])
    assert by_source["list.jsonl:4"][0]["error"].startswith("not a JSON line")
    assert by_source["nowhere.jpg"][0]["error"] == "file not found"
    bad_files = sum(reference[f].error is not None for f in files + files[:3])
    assert summary.errors == sum(r["error"] is not None for r in rows) == bad_files + 2


def test_bytes_in_memory_and_a_dataset_with_a_path_column(ray_local, folder, analyzer_kwargs,
                                                          reference, tmp_path):
    astro = folder / "astronaut.png"
    ds = ray.data.from_items([{"filename": str(astro)}])
    rows = scale.analyze_to_dataset(ds, analyzer_kwargs=analyzer_kwargs, num_workers=1).take_all()
    assert len(rows) == 1 and rows[0]["source"] == str(astro)
    rows = scale.analyze_to_dataset([astro.read_bytes(), b""], analyzer_kwargs=analyzer_kwargs,
                                    num_workers=1).take_all()
    rows = {r["source"]: dict(r, faces=json.loads(r["faces"])) for r in rows}
    empty = rows[scale.bytes_name(b"")]
    assert empty["error"] == "empty file (0 bytes)"
    assert_same(dict(rows[scale.bytes_name(astro.read_bytes())], source=str(astro)),
                reference[str(astro)])


class _Boom:
    """An Analyzer whose batch fails whenever it contains the input "boom"."""

    def analyze_batch(self, inputs):
        from salface.types import ImageResult

        inputs = list(inputs)
        if "boom" in inputs:
            raise RuntimeError("kaboom")
        return iter([ImageResult(source=str(x), width=1, height=1) for x in inputs])


def test_a_batch_that_raises_is_retried_one_image_at_a_time():
    worker = scale.AnalyzeWorker.__new__(scale.AnalyzeWorker)
    worker.analyzer, worker.tmp = _Boom(), None
    rows = worker.analyze_rows([("a", "a", None, None), ("boom", "boom", None, None),
                                ("c", "c", None, "listed as bad"), ("d", None, None, None)])
    assert [r["source"] for r in rows] == ["a", "boom", "c", "d"]
    assert [r["error"] for r in rows] == [None, "analysis failed (RuntimeError: kaboom)",
                                          "listed as bad", "row has neither a path nor image bytes"]
    assert rows[0]["width"] == 1 and rows[0]["faces"] == "[]"


def test_output_name_decides_the_format():
    assert scale.output_format("x/r.parquet") == "parquet"
    assert scale.output_format("r.JSONL") == "jsonl"
    with pytest.raises(ValueError, match="parquet or"):
        scale.output_format("r.csv")


def test_cli_scale_writes_the_rows_and_exits_1_for_bad_files(ray_local, folder, analyzer_kwargs,
                                                             reference, tmp_path):
    from typer.testing import CliRunner

    from salface.cli import app
    from salface.hub import ensure_file

    ensure_file("yunet", source=analyzer_kwargs["detector_options"]["model_path"], progress=False)
    out = tmp_path / "cli.jsonl"
    res = CliRunner().invoke(app, ["scale", str(folder), "--out", str(out), "--ray", "local",
                                   "--workers", "2", "--images-per-call", "2", "--batch-size", "3",
                                   "--no-progress"])
    assert res.exit_code == 1, res.output
    rows = {r["source"]: r for r in scale.read_results(out)}
    assert set(rows) == set(reference)
    for src, ref in reference.items():
        assert_same(rows[src], ref)
    res = CliRunner().invoke(app, ["scale", str(folder), "--out", str(tmp_path / "r.csv")])
    assert res.exit_code == 2 and "parquet or" in res.output


def test_cli_analyze_ray_is_the_same_engine(ray_local, folder, reference, tmp_path):
    """`salface analyze --ray local -o F` runs the Ray engine: the same rows as the reference."""
    from typer.testing import CliRunner

    from salface.cli import app

    out = tmp_path / "analyze.parquet"
    res = CliRunner().invoke(app, ["analyze", str(folder), "--ray", "local", "--output", str(out),
                                   "--batch-size", "3", "--no-progress"])
    assert res.exit_code == 1, res.output  # the folder holds two bad files: error rows
    rows = {r["source"]: r for r in scale.read_results(out)}
    assert set(rows) == set(reference)
    for src, ref in reference.items():
        assert_same(rows[src], ref)
    res = CliRunner().invoke(app, ["analyze", str(folder), "--ray", "local"])
    assert res.exit_code == 2 and "--output" in res.output
