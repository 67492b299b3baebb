"""Run the pipeline over data sets larger than one machine with Ray Data.

:func:`analyze_dataset` reads image paths or image bytes, pushes them through
:class:`salface.pipeline.Analyzer` in :meth:`ray.data.Dataset.map_batches` on a pool of Ray actors
(one Analyzer per actor, built once and reused for every batch it gets) and streams the results
into one Parquet or JSON Lines file. :func:`analyze_to_dataset` gives the lazy result
:class:`ray.data.Dataset` instead, to be written elsewhere with Ray's own writers.

**Inputs** (``source``: one of these or a list of them)

* a file, a folder (searched recursively for image files) or a glob: expanded on the driver with
  :func:`salface.io.iter_image_paths`; the workers read the paths, so on a multi-node cluster they
  must resolve to the same files on every node (a shared filesystem);
* ``*.parquet`` (a file or a folder of them, local or a URI such as ``s3://…``): a path column
  (``path``, ``source``, ``file`` or ``filename``) and/or a bytes column (``bytes``, ``image``,
  ``data``, ``content``; a Hugging Face ``{"bytes", "path"}`` image struct works too). The
  driver reads the footers only; each row group is one unit of work that a worker reads itself,
  so write such files with row groups of a few hundred images. With bytes no shared filesystem
  is needed;
* ``*.jsonl``: one image per line, a JSON string (its path) or an object with ``"path"``; read on
  the driver (a list of paths is small);
* a URI (``s3://…``, ``gs://…``, anything :mod:`pyarrow.fs` opens) of an image or a prefix,
  listed on the driver; the workers read each file through :mod:`pyarrow.fs`;
* an in-memory list of ``bytes``, or a :class:`ray.data.Dataset` with a path or bytes column.

Relative paths in a Parquet or JSONL list are taken relative to the list's folder. Nothing is
read by Ray tasks ahead of the actors: with an actor on every CPU such tasks would never run.

**Output**: one row per input image, in completion order (not input order):

==========  =======  =====================================================================
column      type     meaning
==========  =======  =====================================================================
source      string   the path (or name) of the image
width       int32    image size in pixels (0 when unreadable)
height      int32
n_faces     int32    number of faces found
faces       string   JSON list, one object per face: ``FaceResult.to_dict()`` (box, score,
                     landmarks, crop_box, per task label/confidence/probabilities) with the
                     probabilities and confidences at full float precision
error       string   why the image could not be analysed (null when it was)
==========  =======  =====================================================================

In a ``.jsonl`` output ``faces`` is a JSON list in the line itself, not a string. An unreadable
or undecodable input, an empty file, an unparsable list line or a pattern that matches nothing is
an error row, never a failed job.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

PATH_COLUMNS = ("path", "source", "file", "filename")
BYTES_COLUMNS = ("bytes", "image", "data", "content")
OUTPUT_COLUMNS = ("source", "width", "height", "n_faces", "faces", "error")
FORMATS = ("parquet", "jsonl")


def require_ray():
    """Import :mod:`ray` and :mod:`ray.data`, or raise ImportError saying how to install them."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise ImportError("salface.scale needs Ray Data: pip install 'salface[scale]' "
                          f"(ray[data], pyarrow, pandas); {exc}") from exc
    return ray


def _is_uri(s: str) -> bool:
    return "://" in s


# ---------------------------------------------------------------------------------------- plan
# The driver turns every input into work rows {source, path, data, error, unit}: an image's name
# and a path the worker reads, or its bytes, or why there is no image, or (``unit``) one row group
# of a Parquet file that the worker reads and expands into image rows itself. Nothing is read by
# Ray tasks before the actors: Ray Data launches the actor pool first, and with actors on every CPU
# a read task would never be scheduled (ray-project/ray#44687).

WORK_COLUMNS = ("source", "path", "data", "error", "unit")


def _row(source: str, path: str | None = None, data: bytes | None = None,
         error: str | None = None, unit: str | None = None) -> dict[str, Any]:
    return {"source": str(source), "path": path, "data": data, "error": error, "unit": unit}


def _work_schema():
    import pyarrow as pa

    return pa.schema([("source", pa.string()), ("path", pa.string()), ("data", pa.binary()),
                      ("error", pa.string()), ("unit", pa.string())])


def _resolve(path: str, base: str | None) -> str:
    if base is None or _is_uri(path) or os.path.isabs(path):
        return path
    if _is_uri(base):
        return base.rstrip("/") + "/" + path
    return os.path.join(base, path)


def _parent(raw: str) -> str:
    return raw.rsplit("/", 1)[0] if _is_uri(raw) else os.path.dirname(os.path.abspath(raw))


def _filesystem(raw: str):
    """``(pyarrow filesystem, path in it)`` for a local path or a URI."""
    import pyarrow.fs

    if _is_uri(raw):
        return pyarrow.fs.FileSystem.from_uri(raw)
    return pyarrow.fs.LocalFileSystem(), os.path.abspath(raw)


def bytes_name(data: bytes) -> str:
    """The source name of an image given as bytes without a name: ``sha256:<16 hex digits>``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()[:16]


def _pick(names: Sequence[str], preferred: str | None, candidates: Sequence[str]) -> str | None:
    if preferred is not None:
        if preferred not in names:
            raise ValueError(f"column {preferred!r} not found; columns are {list(names)}")
        return preferred
    return next((c for c in candidates if c in names), None)


def _columns(names: Sequence[str], path_column: str | None, bytes_column: str | None
             ) -> tuple[str | None, str | None]:
    path_col = _pick(names, path_column, PATH_COLUMNS)
    bytes_col = _pick(names, bytes_column, BYTES_COLUMNS)
    if path_col is None and bytes_col is None:
        raise ValueError(f"no path column ({', '.join(PATH_COLUMNS)}) or bytes column "
                         f"({', '.join(BYTES_COLUMNS)}) among {list(names)}")
    return path_col, bytes_col


def table_row(record: dict[str, Any], path_col: str | None, bytes_col: str | None,
              base: str | None) -> dict[str, Any]:
    """The work row of one record of a table with a path and/or a bytes column."""
    path = record.get(path_col) if path_col else None
    data = record.get(bytes_col) if bytes_col else None
    if isinstance(data, dict):  # Hugging Face image struct {"bytes": …, "path": …}
        path = path or data.get("path")
        data = data.get("bytes")
    if isinstance(data, str):
        data = None  # a text column of that name: not image bytes
    if data is not None:
        data = bytes(data)
        return _row(path or bytes_name(data), data=data)
    if path:
        return _row(path, path=_resolve(str(path), base))
    return _row("<row without path or bytes>", error="row has neither a path nor image bytes")


def _jsonl_rows(raw: str) -> list[dict[str, Any]]:
    """Work rows of a JSON Lines list: each line a path string or an object with a "path"."""
    fs, path = _filesystem(raw)
    base, name = _parent(raw), os.path.basename(raw)
    rows = []
    with fs.open_input_stream(path) as fh:
        text = fh.read().decode("utf-8", errors="replace")
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            rows.append(_row(f"{name}:{lineno}", error=f"not a JSON line ({exc.msg})"))
            continue
        if isinstance(item, dict):
            item = next((item[k] for k in PATH_COLUMNS if isinstance(item.get(k), str)), None)
        if not isinstance(item, str) or not item:
            rows.append(_row(f"{name}:{lineno}", error="JSON line is neither a path string nor "
                                                      "an object with a 'path'"))
        else:
            rows.append(_row(item, path=_resolve(item, base)))
    return rows


def _parquet_units(raw: str, path_column: str | None, bytes_column: str | None
                   ) -> list[dict[str, Any]]:
    """One work row per row group of each Parquet file in ``raw`` (a file or a folder)."""
    import pyarrow.fs
    import pyarrow.parquet as pq

    fs, root = _filesystem(raw)
    info = fs.get_file_info(root)
    if info.type == pyarrow.fs.FileType.NotFound:
        return [_row(raw, error="no such file or folder")]
    if info.type == pyarrow.fs.FileType.Directory:
        sel = fs.get_file_info(pyarrow.fs.FileSelector(root, recursive=True))
        files = sorted(f.path for f in sel if f.type == pyarrow.fs.FileType.File
                       and f.base_name.endswith(".parquet") and not f.base_name.startswith((".", "_")))
        base = raw
    else:
        files, base = [root], _parent(raw)
    uri_prefix = raw.split("://", 1)[0] + "://" if _is_uri(raw) else ""
    rows = []
    for f in files:
        name = uri_prefix + f if uri_prefix and not _is_uri(f) else f
        try:
            with fs.open_input_file(f) as fh:
                meta = pq.ParquetFile(fh).metadata
            path_col, bytes_col = _columns(meta.schema.to_arrow_schema().names, path_column,
                                           bytes_column)
        except (OSError, ValueError) as exc:  # unreadable, not Parquet, no usable column
            rows.append(_row(name, error=f"cannot read Parquet list ({exc})"))
            continue
        for rg in range(meta.num_row_groups):
            unit = {"file": name, "row_group": rg, "path_column": path_col,
                    "bytes_column": bytes_col, "base": base}
            rows.append(_row(f"{name}#row_group={rg}", unit=json.dumps(unit)))
    return rows


def _uri_files(raw: str) -> list[dict[str, Any]]:
    """Work rows for the image files under a URI (a file, or a prefix listed recursively)."""
    import pyarrow.fs

    from .io import IMAGE_EXTENSIONS

    fs, root = _filesystem(raw)
    scheme = raw.split("://", 1)[0] + "://"
    info = fs.get_file_info(root)
    if info.type == pyarrow.fs.FileType.File:
        return [_row(raw, path=raw)]
    if info.type != pyarrow.fs.FileType.Directory:
        return [_row(raw, error="no such file or folder")]
    sel = fs.get_file_info(pyarrow.fs.FileSelector(root, recursive=True))
    found = sorted(scheme + f.path for f in sel if f.type == pyarrow.fs.FileType.File
                   and os.path.splitext(f.base_name)[1].lower() in IMAGE_EXTENSIONS
                   and not f.base_name.startswith("."))
    return [_row(p, path=p) for p in found] or [_row(raw, error="folder contains no image files")]


def plan(source: Any, *, path_column: str | None = None,
         bytes_column: str | None = None) -> list[dict[str, Any]]:
    """The work rows for ``source`` (anything but a Ray Dataset; see the module docstring)."""
    if isinstance(source, (str, os.PathLike, bytes, bytearray)):
        source = [source]
    rows: list[dict[str, Any]] = []
    for item in source:
        if isinstance(item, (bytes, bytearray)):
            rows.append(_row(bytes_name(bytes(item)), data=bytes(item)))
            continue
        raw = os.fspath(item)
        low = raw.lower().rstrip("/")
        try:
            if low.endswith(".parquet") or (os.path.isdir(raw) and _only_parquet(raw)):
                rows.extend(_parquet_units(raw, path_column, bytes_column))
            elif low.endswith((".jsonl", ".ndjson")):
                rows.extend(_jsonl_rows(raw))
            elif _is_uri(raw):
                rows.extend(_uri_files(raw))
            else:
                from .io import iter_image_paths

                rows.extend(_row(str(p), path=str(p)) for p in iter_image_paths([raw]))
        except ValueError as exc:  # ImageError (matches nothing) or a bad column name
            rows.append(_row(raw, error=getattr(exc, "reason", str(exc))))
        except OSError as exc:  # a list that cannot be read
            rows.append(_row(raw, error=f"could not read ({type(exc).__name__}: {exc})"))
    if not rows:
        raise ValueError("no input given")
    return rows


def _only_parquet(folder: str) -> bool:
    names = [n for n in os.listdir(folder) if not n.startswith((".", "_"))]
    return any(n.endswith(".parquet") for n in names) and all(
        n.endswith(".parquet") or os.path.isdir(os.path.join(folder, n)) for n in names)


def read_sources(source: Any, *, path_column: str | None = None,
                 bytes_column: str | None = None, block_rows: int = 32):
    """A :class:`ray.data.Dataset` of work rows for ``source``, made on the driver: images in
    blocks of ``block_rows`` (a block goes to one actor call whole), each Parquet row group a block
    of its own. A :class:`ray.data.Dataset` given as ``source`` is returned as it is."""
    ray = require_ray()
    import pyarrow as pa
    import ray.data

    if isinstance(source, ray.data.Dataset):
        return source
    rows = plan(source, path_column=path_column, bytes_column=bytes_column)
    table = pa.Table.from_pylist(rows, schema=_work_schema())
    units = np.array([r["unit"] is not None for r in rows])
    blocks = [table.filter(pa.array(~units))] if not units.all() else []
    if blocks:
        n = blocks[0].num_rows
        per = max(block_rows, -(-n // 1000))  # at most ~1000 blocks of images
        blocks = [blocks[0].slice(i, per) for i in range(0, n, per)]
    blocks += [table.slice(int(i), 1) for i in np.flatnonzero(units)]
    return ray.data.from_arrow(blocks)


# ---------------------------------------------------------------------------------------- work


def face_record(face) -> dict[str, Any]:
    """``FaceResult.to_dict()`` with probabilities and confidences at full precision."""
    d = face.to_dict()
    for task, p in face.predictions().items():
        d[task]["probabilities"] = {k: float(v) for k, v in p.probabilities.items()}
        d[task]["confidence"] = float(p.confidence)
    return d


def result_row(source: str, result=None, error: str | None = None) -> dict[str, Any]:
    """One output row from an :class:`~salface.types.ImageResult` (or an error)."""
    if result is None or result.error is not None:
        return {"source": source, "width": int(getattr(result, "width", 0) or 0),
                "height": int(getattr(result, "height", 0) or 0), "n_faces": 0, "faces": "[]",
                "error": error if error is not None else result.error}
    return {"source": source, "width": int(result.width), "height": int(result.height),
            "n_faces": len(result.faces),
            "faces": json.dumps([face_record(f) for f in result.faces]), "error": None}


def _read_uri(uri: str) -> bytes:
    fs, path = _filesystem(uri)
    with fs.open_input_stream(path) as fh:
        return fh.read()


class AnalyzeWorker:
    """The callable class :meth:`ray.data.Dataset.map_batches` runs on each actor: one
    :class:`~salface.pipeline.Analyzer` per actor, reused for every batch of rows.

    A batch holds work rows (:data:`WORK_COLUMNS`, made by :func:`read_sources`) or, when
    ``columns`` is given, rows of a user's data set with a path and/or bytes column. Images go to
    the Analyzer ``chunk`` at a time; a Parquet row group is read and expanded here.
    """

    def __init__(self, analyzer_kwargs: dict[str, Any] | None = None, *,
                 columns: tuple[str | None, str | None] | None = None, chunk: int = 32) -> None:
        from .pipeline import Analyzer

        self.analyzer = Analyzer(**(analyzer_kwargs or {}))
        self.columns, self.chunk = columns, max(1, int(chunk))
        self.tmp = tempfile.mkdtemp(prefix="salface-scale-")

    def _decode(self, data: bytes) -> np.ndarray:
        """Bytes → RGB pixels through :func:`salface.io.load_image` (the same decoder, EXIF and
        error handling as for a path), via a short-lived file in the worker's temp folder."""
        from .io import load_image

        fd, tmp = tempfile.mkstemp(dir=self.tmp)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            return load_image(tmp)
        finally:
            os.unlink(tmp)

    def _inputs(self, source: str, path: str | None, data: bytes | None, error: str | None):
        """What to give the Analyzer for one row, or ``(None, error)``."""
        from .io import ImageError

        if error is not None:
            return None, error
        try:
            if path is not None and _is_uri(path):
                data = _read_uri(path)
            if data is not None:
                return self._decode(bytes(data)), None
        except ImageError as exc:
            return None, exc.reason
        except OSError as exc:
            return None, f"could not read ({type(exc).__name__}: {exc})"
        if path is not None:
            return path, None
        return None, "row has neither a path nor image bytes"

    @staticmethod
    def _expand(unit: str) -> list[dict[str, Any]]:
        """The work rows of one Parquet row group."""
        import pyarrow.parquet as pq

        u = json.loads(unit)
        cols = [c for c in (u["path_column"], u["bytes_column"]) if c]
        try:
            fs, path = _filesystem(u["file"])
            with fs.open_input_file(path) as fh:
                records = pq.ParquetFile(fh).read_row_group(u["row_group"], columns=cols).to_pylist()
        except (OSError, ValueError) as exc:
            return [_row(f"{u['file']}#row_group={u['row_group']}",
                         error=f"could not read row group ({type(exc).__name__}: {exc})")]
        return [table_row(r, u["path_column"], u["bytes_column"], u["base"]) for r in records]

    def analyze_rows(self, rows: Sequence[tuple[str, str | None, bytes | None, str | None]]
                     ) -> list[dict[str, Any]]:
        """Output rows for ``(source, path, data, error)`` work rows, in order."""
        prepared = [self._inputs(*r) for r in rows]
        todo = [i for i, (x, _) in enumerate(prepared) if x is not None]
        results: dict[int, Any] = {}
        try:
            for i, res in zip(todo, self.analyzer.analyze_batch([prepared[i][0] for i in todo])):
                results[i] = res
        except Exception:  # isolate the input that breaks the batch: one image at a time
            results = {}
            for i in todo:
                try:
                    results[i] = next(self.analyzer.analyze_batch([prepared[i][0]]))
                except Exception as exc:
                    prepared[i] = (None, f"analysis failed ({type(exc).__name__}: {exc})")
        return [result_row(src, results.get(i), prepared[i][1])
                for i, (src, *_rest) in enumerate(rows)]

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list]:
        n = len(next(iter(batch.values()))) if batch else 0
        if self.columns is not None:
            cols = {k: _as_list(v) for k, v in batch.items()}
            records = [{k: v[i] for k, v in cols.items()} for i in range(n)]
            work = [table_row(r, *self.columns, None) for r in records]
        else:
            work = []
            cols = {c: _as_list(batch[c]) for c in WORK_COLUMNS}
            for i in range(n):
                row = {c: cols[c][i] for c in WORK_COLUMNS}
                work.extend(self._expand(row["unit"]) if row["unit"] else [row])
        out: list[dict[str, Any]] = []
        for k in range(0, len(work), self.chunk):
            out.extend(self.analyze_rows([(r["source"], r["path"], r["data"], r["error"])
                                          for r in work[k:k + self.chunk]]))
        return {c: [r[c] for r in out] for c in OUTPUT_COLUMNS}


def _as_list(col) -> list:
    return [None if (v is None or (isinstance(v, float) and np.isnan(v))) else v for v in list(col)]


# ---------------------------------------------------------------------------------------- driver


def connect(address: str | None = "local", *, num_cpus: int | None = None) -> bool:
    """Join (or, for ``"local"``, start) a Ray cluster unless Ray is already initialised.

    ``address``: ``"local"`` starts a Ray instance in this process with ``num_cpus`` CPUs (default:
    all); ``"auto"`` joins the cluster this machine belongs to (``ray start`` ran here);
    ``"ray://HEAD:10001"`` connects with Ray Client; ``"HEAD:6379"`` joins as a driver.
    Returns True when this call started or joined Ray (the caller then shuts it down).
    """
    ray = require_ray()
    if ray.is_initialized():
        return False
    if address in (None, "local"):
        ray.init(num_cpus=num_cpus, include_dashboard=False, logging_level="WARNING")
    else:
        ray.init(address=address, logging_level="WARNING")
    return True


def default_workers(cpus_per_worker: float = 1) -> int:
    """As many workers as the connected cluster's CPUs allow at ``cpus_per_worker`` each."""
    ray = require_ray()
    per = cpus_per_worker if cpus_per_worker > 0 else 1
    return max(1, int(ray.cluster_resources().get("CPU", 1) // per))


def analyze_to_dataset(source: Any, *, analyzer_kwargs: dict[str, Any] | None = None,
                       num_workers: int | None = None, batch_size: int = 32,
                       cpus_per_worker: float = 1, gpus_per_worker: float = 0,
                       path_column: str | None = None, bytes_column: str | None = None):
    """The lazy :class:`ray.data.Dataset` of result rows (columns :data:`OUTPUT_COLUMNS`).

    Ray must be initialised (:func:`connect`). ``num_workers`` actors (default: as many as the
    cluster's CPUs allow at ``cpus_per_worker`` each) each build one Analyzer from
    ``analyzer_kwargs`` and get ``batch_size`` images at a time.
    """
    ray = require_ray()
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    if num_workers is None:
        num_workers = default_workers(cpus_per_worker)
    if num_workers < 1:
        raise ValueError("num_workers must be >= 1")
    analyzer_kwargs = dict(analyzer_kwargs or {})
    if cpus_per_worker >= 1:  # network threads = the CPUs the actor reserves
        analyzer_kwargs.setdefault("threads", int(cpus_per_worker))
    columns = None
    if isinstance(source, ray.data.Dataset):  # the user's blocks: batches of batch_size rows
        columns = _columns(source.schema().names, path_column, bytes_column)
    rows = read_sources(source, path_column=path_column, bytes_column=bytes_column,
                        block_rows=batch_size)
    return rows.map_batches(
        AnalyzeWorker, fn_constructor_kwargs={"analyzer_kwargs": analyzer_kwargs,
                                              "columns": columns, "chunk": batch_size},
        batch_size=batch_size if columns is not None else None, batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=num_workers),
        num_cpus=cpus_per_worker, num_gpus=gpus_per_worker or None)


@dataclass
class Summary:
    """What :func:`analyze_dataset` did."""

    output: str
    images: int
    faces: int
    errors: int
    seconds: float
    workers: int

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"output": self.output, "images": self.images, "faces": self.faces,
                "errors": self.errors, "seconds": round(self.seconds, 3), "workers": self.workers,
                "images_per_second": round(self.images_per_second, 3)}


def output_format(output: str | os.PathLike) -> str:
    """``"parquet"`` or ``"jsonl"`` from the output file's name."""
    name = os.fspath(output).lower()
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    raise ValueError(f"output {os.fspath(output)!r}: name it *.parquet or *.jsonl")


def _write(batches: Iterable[Any], output: Path, fmt: str) -> tuple[int, int, int]:
    """Stream pyarrow tables into ``output`` (written to a temp name, renamed when complete)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([("source", pa.string()), ("width", pa.int32()), ("height", pa.int32()),
                        ("n_faces", pa.int32()), ("faces", pa.string()), ("error", pa.string())])
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".partial")
    images = faces = errors = 0
    try:
        if fmt == "parquet":
            with pq.ParquetWriter(tmp, schema) as writer:
                for t in batches:
                    t = t.select(list(OUTPUT_COLUMNS)).cast(schema)
                    writer.write_table(t)
                    images, faces, errors = _count(t, images, faces, errors)
        else:
            with open(tmp, "w", encoding="utf-8") as fh:
                for t in batches:
                    t = t.select(list(OUTPUT_COLUMNS)).cast(schema)
                    for r in t.to_pylist():
                        r["faces"] = json.loads(r["faces"])
                        fh.write(json.dumps(r) + "\n")
                    images, faces, errors = _count(t, images, faces, errors)
        os.replace(tmp, output)
    finally:
        if tmp.exists():
            tmp.unlink()
    return images, faces, errors


def _count(t, images: int, faces: int, errors: int) -> tuple[int, int, int]:
    import pyarrow.compute as pc

    return (images + t.num_rows, faces + int(pc.sum(t["n_faces"]).as_py() or 0),
            errors + t.num_rows - t["error"].null_count)


def analyze_dataset(source: Any, output: str | os.PathLike, *, address: str | None = "local",
                    analyzer_kwargs: dict[str, Any] | None = None, num_workers: int | None = None,
                    batch_size: int = 32, cpus_per_worker: float = 1, gpus_per_worker: float = 0,
                    path_column: str | None = None, bytes_column: str | None = None,
                    num_cpus: int | None = None, progress: bool = False) -> Summary:
    """Analyse every image of ``source`` on a Ray cluster and write one row per image to
    ``output`` (``*.parquet`` or ``*.jsonl``), streamed from the driver.

    ``address`` is passed to :func:`connect` (``"local"``: a Ray instance on this machine with
    ``num_cpus`` CPUs); when Ray is already initialised it is used as it is. ``analyzer_kwargs``
    are :class:`~salface.pipeline.Analyzer`'s arguments (detector, model, tasks, device,
    batch_size = faces per network batch, …); ``batch_size`` here is images per actor call.
    Returns a :class:`Summary`; the file is complete when this returns (it is written under a
    ``.partial`` name and renamed at the end).
    """
    fmt = output_format(output)
    ray = require_ray()
    started = connect(address, num_cpus=num_cpus)
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = progress
        if num_workers is None:
            num_workers = default_workers(cpus_per_worker)
        t0 = time.perf_counter()
        ds = analyze_to_dataset(source, analyzer_kwargs=analyzer_kwargs, num_workers=num_workers,
                                batch_size=batch_size, cpus_per_worker=cpus_per_worker,
                                gpus_per_worker=gpus_per_worker, path_column=path_column,
                                bytes_column=bytes_column)
        images, faces, errors = _write(ds.iter_batches(batch_format="pyarrow", batch_size=None),
                                       Path(output), fmt)
        seconds = time.perf_counter() - t0
    finally:
        if started:
            ray.shutdown()
    return Summary(os.fspath(output), images, faces, errors, seconds, num_workers)


def read_results(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The rows of an :func:`analyze_dataset` output, ``faces`` parsed into lists."""
    if output_format(path) == "parquet":
        import pyarrow.parquet as pq

        rows = pq.read_table(path).to_pylist()
        for r in rows:
            r["faces"] = json.loads(r["faces"])
        return rows
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def bytes_table(paths: Iterable[str | os.PathLike]):
    """A pyarrow table ``{path, bytes}`` of the given files, to write with
    :func:`pyarrow.parquet.write_table` as a self-contained Parquet input."""
    import pyarrow as pa

    names, blobs = [], []
    for p in paths:
        names.append(os.fspath(p))
        blobs.append(Path(p).read_bytes())
    return pa.table({"path": pa.array(names, pa.string()), "bytes": pa.array(blobs, pa.binary())})


__all__ = ["analyze_dataset", "analyze_to_dataset", "read_sources", "connect", "read_results",
           "AnalyzeWorker", "Summary", "bytes_table", "bytes_name", "face_record", "result_row", "output_format"]
