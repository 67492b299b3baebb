"""``salface scale``: ``analyze`` over a Ray cluster, for data sets larger than one machine
(:mod:`salface.scale`; ``pip install salface[scale]``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape

err = Console(stderr=True)


def register(app: typer.Typer) -> None:
    @app.command("scale")
    def scale_cmd(
        paths: list[str] = typer.Argument(..., help="Image files, folders, globs, *.parquet (a path "
                                          "and/or bytes column), *.jsonl lists of paths, or URIs "
                                          "(s3://…) of images or Parquet files."),
        out: Path = typer.Option(..., "--out", "-o", help="Results file: *.parquet or *.jsonl, one "
                                 "row per image (source, width, height, n_faces, faces, error)."),
        ray_address: str = typer.Option("local", "--ray", help="local (a Ray instance on this "
                                        "machine), auto (the cluster `ray start` joined here), "
                                        "ray://HEAD:10001 (Ray Client) or HEAD:6379."),
        workers: Optional[int] = typer.Option(None, "--workers", min=1, help="Actors, each with "
                                              "one Analyzer (default: cluster CPUs / "
                                              "--cpus-per-worker)."),
        images_per_call: int = typer.Option(32, "--images-per-call", min=1,
                                            help="Images per actor call (a Ray Data batch)."),
        cpus_per_worker: float = typer.Option(1.0, "--cpus-per-worker", min=0.0,
                                              help="CPUs each actor reserves (and its network "
                                                   "threads, unless --threads)."),
        gpus_per_worker: float = typer.Option(0.0, "--gpus-per-worker", min=0.0,
                                              help="GPUs each actor reserves (use with "
                                                   "--device cuda)."),
        num_cpus: Optional[int] = typer.Option(None, "--num-cpus", min=1,
                                               help="CPUs of the local Ray instance (--ray local)."),
        path_column: Optional[str] = typer.Option(None, help="Parquet: the column of paths."),
        bytes_column: Optional[str] = typer.Option(None, help="Parquet: the column of image bytes."),
        detector: str = typer.Option("auto", help="Face detector (as for analyze)."),
        tasks: str = typer.Option("age,gender,expression", help="Comma-separated tasks."),
        model: str = typer.Option("default", help="'default' or a bundled model name."),
        detect_only: bool = typer.Option(False, "--detect-only", help="No classification."),
        fast: bool = typer.Option(False, "--fast", help="The fast profile of the default models "
                                  "(as for analyze --fast)."),
        device: str = typer.Option("cpu", help="cpu, cuda or auto (on each worker)."),
        backend: str = typer.Option("auto", help="auto, onnx or torch (as for analyze)."),
        threads: Optional[int] = typer.Option(None, min=1, help="Threads per network in each "
                                              "worker (default: --cpus-per-worker)."),
        batch_size: int = typer.Option(64, min=1, help="Faces per network batch."),
        max_faces: Optional[int] = typer.Option(None, min=1, help="Keep at most N faces per image."),
        progress: bool = typer.Option(True, "--progress/--no-progress",
                                      help="Ray Data's progress bars on stderr."),
    ) -> None:
        """Run analyze on a Ray cluster: each worker builds one Analyzer; results stream into one
        Parquet or JSON Lines file. Unreadable inputs are error rows, never a failed job.

        Exit code 0: every image was analysed; 1: some inputs are error rows; 2: usage, model or
        cluster problems (no output written).
        """
        run_scale(paths, out, ray_address=ray_address, workers=workers,
                  images_per_call=images_per_call, cpus_per_worker=cpus_per_worker,
                  gpus_per_worker=gpus_per_worker, num_cpus=num_cpus, path_column=path_column,
                  bytes_column=bytes_column, detector=detector, tasks=tasks, model=model,
                  detect_only=detect_only, device=device, backend=backend, threads=threads,
                  batch_size=batch_size, max_faces=max_faces, progress=progress, fast=fast)


def run_scale(paths: list[str], out: Path, *, ray_address: str = "local",
              workers: Optional[int] = None, images_per_call: int = 32, cpus_per_worker: float = 1.0,
              gpus_per_worker: float = 0.0, num_cpus: Optional[int] = None,
              path_column: Optional[str] = None, bytes_column: Optional[str] = None,
              detector: str = "auto", tasks: str = "age,gender,expression", model: str = "default",
              detect_only: bool = False, device: str = "cpu", backend: str = "auto",
              threads: Optional[int] = None, batch_size: int = 64, max_faces: Optional[int] = None,
              progress: bool = True, fast: bool = False) -> None:
    """The body of ``salface scale`` (also ``salface analyze --ray``); exits with its code."""
    from .. import scale

    try:
        scale.output_format(out)
        scale.require_ray()
    except (ValueError, ImportError) as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2)
    kwargs = {"detector": detector, "model": None if detect_only else model,
              "tasks": tuple(t.strip() for t in tasks.split(",") if t.strip()),
              "device": device, "backend": backend, "batch_size": batch_size,
              "max_faces": max_faces}
    if fast and not detect_only:
        kwargs["fast"] = True
    if threads is not None:
        kwargs["threads"] = threads
    try:
        summary = scale.analyze_dataset(
            paths, out, address=ray_address, analyzer_kwargs=kwargs, num_workers=workers,
            batch_size=images_per_call, cpus_per_worker=cpus_per_worker,
            gpus_per_worker=gpus_per_worker, path_column=path_column,
            bytes_column=bytes_column, num_cpus=num_cpus, progress=progress)
    except Exception as exc:  # cluster, model or set-up failure: Ray wraps the worker's error
        err.print(f"[red]error:[/red] {escape(f'{type(exc).__name__}: {exc}')}")
        raise typer.Exit(2)
    err.print(escape(json.dumps(summary.to_dict())))
    if summary.errors:
        err.print(f"[yellow]{summary.errors} of {summary.images} inputs failed "
                  f"(rows with an error in {out})[/yellow]")
        raise typer.Exit(1)
