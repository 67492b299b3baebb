"""``salface analyze``: the main job, over files, folders, globs, video files and cameras."""

from __future__ import annotations

import csv
import json
import sys
from contextlib import nullcontext
from dataclasses import dataclass
from enum import Enum
from itertools import groupby
from pathlib import Path
from typing import IO, Iterable, Optional, Union

import typer
from rich.console import Console
from rich.markup import escape

err = Console(stderr=True)


class Format(str, Enum):
    json = "json"
    jsonl = "jsonl"
    csv = "csv"


CSV_FIELDS = ["source", "face", "x1", "y1", "x2", "y2", "score", "age", "age_confidence", "gender",
              "gender_confidence", "expression", "expression_confidence", "error"]
VIDEO_CSV_FIELDS = (["source", "frame", "time", "track"] + CSV_FIELDS[1:-1]
                    + [f"{t}_smoothed{s}" for t in ("age", "gender", "expression")
                       for s in ("", "_confidence")] + ["error"])
"""CSV columns when a video is among the inputs (image rows leave frame, time, track empty)."""

Item = Union[Path, int, "ImageResult"]  # noqa: F821 — an image/video path, a camera, an error row


_CSV_DIGITS = {"x1": 1, "y1": 1, "x2": 1, "y2": 1, "time": 3}


def csv_rows(result) -> list[dict]:
    """One CSV row per face (rounded); an image with no face (or an error) still gets one row."""
    from ..frames import result_rows

    rows = result_rows(result, probabilities=False)
    for row in rows:
        for k, v in row.items():
            if isinstance(v, float):
                row[k] = round(v, _CSV_DIGITS.get(k, 4))
        row["error"] = row.get("error") or ""
    return rows


class _Writer:
    """Streams results as they come (JSON Lines, CSV) or collects them (JSON)."""

    def __init__(self, fmt: Format, out: IO[str], fields: list[str] = CSV_FIELDS):
        self.fmt, self.out, self.items = fmt, out, []
        self.csv = (csv.DictWriter(out, fields, extrasaction="ignore") if fmt is Format.csv
                    else None)
        if self.csv:
            self.csv.writeheader()

    def add(self, result) -> None:
        if self.fmt is Format.jsonl:
            self.out.write(json.dumps(result.to_dict()) + "\n")
            self.out.flush()
        elif self.csv:
            self.csv.writerows(csv_rows(result))
            self.out.flush()
        else:
            self.items.append(result.to_dict())

    def close(self) -> None:
        if self.fmt is Format.json:
            json.dump(self.items, self.out, indent=2)
            self.out.write("\n")


def expand_inputs(paths: Iterable[str]) -> list[Item]:
    """Each argument's files (videos kept as given), in argument order without repeats; an
    argument that matches nothing (missing path, empty folder, glob without match) becomes an error
    row in its place instead of stopping the job."""
    from ..io import ImageError, iter_image_paths
    from ..types import ImageResult

    items: list[Item] = []
    seen: set[Path] = set()
    for arg in paths:
        try:
            files = iter_image_paths([arg])
        except ImageError as exc:
            items.append(ImageResult(source=arg, error=exc.reason))
            continue
        for f in files:
            if f.resolve() not in seen:
                seen.add(f.resolve())
                items.append(f)
    return items


def _kind(item: Item) -> str:
    from ..video import is_video_path

    if isinstance(item, int):
        return "video"
    if isinstance(item, Path):
        return "video" if is_video_path(item) else "image"
    return "error"


@dataclass
class VideoOptions:
    every: int
    fps: Optional[float]
    smooth: float
    track_iou: float
    max_missed: int
    max_frames: Optional[int]
    duration: Optional[float]
    annotate: Optional[Path]
    """A file (.mp4) for the one video, or a folder for several (``<stem>.mp4`` in it)."""
    progress: bool

    def annotate_path(self, name: str) -> Optional[Path]:
        if self.annotate is None:
            return None
        if self.annotate.suffix.lower() in (".mp4", ".m4v", ".mov"):
            return self.annotate
        return self.annotate / f"{Path(name).stem.replace(' ', '')}.mp4"


def _run_images(results, writer: _Writer, total: int, annotate_dir: Optional[Path],
                saliency_dir: Optional[Path], ratio: float, progress: bool) -> int:
    """Write each :class:`ImageResult` of ``results`` (and its pictures); returns how many failed."""
    from ..viz import annotate, save_rgb, saliency_triplet

    failed = 0
    bar = None
    if progress and total > 1:
        from rich.progress import Progress

        bar = Progress(console=err, transient=True)
        bar.start()
        tid = bar.add_task("analyzing", total=total)
    try:
        for res in results:
            writer.add(res)
            if res.error is not None:
                failed += 1
                err.print(f"[yellow]skipped[/yellow] {res.source}: {res.error}")
            else:
                stem = Path(res.source).stem
                if annotate_dir is not None:
                    save_rgb(annotate_dir / f"{stem}.jpg", annotate(res.image, res.faces))
                if saliency_dir is not None:
                    for i, f in enumerate(res.faces):
                        if f.saliency is not None and f.crop is not None:
                            save_rgb(saliency_dir / f"{stem}_face{i}.png",
                                     saliency_triplet(f.crop, f.saliency, ratio))
            if bar is not None:
                bar.advance(tid)
    finally:
        if bar is not None:
            bar.stop()
    return failed


def _run_video(analyzer, source: Union[Path, int], writer: _Writer, opts: VideoOptions):
    """Analyse one video or camera, writing a record per frame; returns its VideoRun (its
    ``error`` set when the video failed) and whether the user interrupted it."""
    from ..track import IoUTracker
    from ..types import ImageResult
    from ..video import AnnotatedVideoWriter, VideoError, analyze_video

    tracker = IoUTracker(iou_threshold=opts.track_iou, max_missed=opts.max_missed,
                         smoothing=opts.smooth)
    src = source if isinstance(source, int) else str(source)
    run = analyze_video(src, analyzer, every=opts.every, fps=opts.fps, tracker=tracker,
                        max_frames=opts.max_frames, duration=opts.duration,
                        keep_images=opts.annotate is not None, progress=opts.progress)
    out_path = opts.annotate_path(run.name)
    video_out = None
    interrupted = False
    try:
        for fr in run:
            writer.add(fr)
            if out_path is not None:
                video_out = video_out or AnnotatedVideoWriter(out_path, run.output_fps())
                video_out.write(fr)
    except VideoError as exc:   # the input's own error, or the annotated video's (named)
        run.error = exc.reason if exc.source == run.name else str(exc)
    except KeyboardInterrupt:
        interrupted = True
        err.print(f"[yellow]stopped[/yellow] {run.name} after {run.frames_analysed} frames")
    finally:
        if video_out is not None:
            video_out.close()
    if run.error is not None:
        writer.add(ImageResult(source=run.name, error=run.error))
        kept = f" (the {run.frames_analysed} frames before it are in the output)" \
            if run.frames_analysed else ""
        err.print(f"[red]error:[/red] {run.name}: {run.error}{kept}")
    elif video_out is not None:
        err.print(f"annotated video: {out_path} ({video_out.frames} frames)")
    return run, interrupted


def _print_tracks(summaries: list[dict]) -> None:
    from rich.table import Table

    for s in summaries:
        tracks = s["tracks"]
        table = Table(title=f"{s['source']}: {s['frames_analysed']} frames, {len(tracks)} tracks",
                      title_justify="left")
        tasks = [t for t in ("age", "gender", "expression") if any(t in tr for tr in tracks)]
        for col in ["track", "frames", "time (s)", *tasks]:
            table.add_column(col)
        for tr in sorted(tracks, key=lambda tr: -tr["frames"])[:20]:
            table.add_row(str(tr["track"]), str(tr["frames"]),
                          f"{tr['first_time']:.2f}–{tr['last_time']:.2f}",
                          *[tr[t]["majority"] if t in tr else "" for t in tasks])
        if tracks:
            err.print(table)


def _write_video_reports(runs: list, summary: Optional[Path], plot: Optional[Path]) -> None:
    """The per-track summary (JSON) and the expression-over-time plots of the videos analysed."""
    summaries = [run.summary() for run in runs]
    _print_tracks(summaries)
    if summary is not None:
        summary.parent.mkdir(parents=True, exist_ok=True)
        summary.write_text(json.dumps({"videos": summaries}, indent=2) + "\n")
        err.print(f"track summary: {summary}")
    if plot is None:
        return
    from ..video import plot_tracks

    for run in runs:
        path = plot if len(runs) == 1 else plot.with_name(
            f"{plot.stem}_{Path(run.name).stem.replace(' ', '')}{plot.suffix}")
        tasks = [t for t in ("expression", "age", "gender")
                 if any(t in tr.history for tr in run.tracker.tracks)]
        if not tasks:
            err.print(f"[yellow]no plot[/yellow] for {run.name}: no face was classified")
            continue
        plot_tracks(run.tracker, path, task=tasks[0], title=f"{run.name}: {tasks[0]} over time")
        err.print(f"plot: {path}")


def _open_output(output: Optional[Path]):
    """The output file (its folder made), or stdout, as a context manager."""
    if output is None:
        return nullcontext(sys.stdout)
    output.parent.mkdir(parents=True, exist_ok=True)
    return open(output, "w", newline="")


def _usage(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {escape(str(message))}")
    return typer.Exit(2)


def register(app: typer.Typer) -> None:
    @app.command("analyze")
    def analyze_cmd(
        paths: Optional[list[str]] = typer.Argument(
            None, help="Image files, folders (searched recursively for images), glob patterns "
                       "(quote them: 'photos/*.jpg') and video files (.mp4, .avi, .mov, .mkv, …)."),
        camera: Optional[int] = typer.Option(None, "--camera", min=0,
                                             help="Analyse camera N live (stop with Ctrl-C, "
                                                  "--max-frames or --duration)."),
        output: Optional[Path] = typer.Option(None, "--output", "-o",
                                              help="Write results to this file instead of stdout."),
        fmt: Optional[Format] = typer.Option(
            None, "--format", "-f",
            help="json: one list (default for images); jsonl: one line per image or video frame, "
                 "written as each finishes (default with videos); csv: one row per face."),
        annotate_dir: Optional[Path] = typer.Option(
            None, "--annotate",
            help="Write a copy of each image with boxes, landmarks and labels drawn into DIR "
                 "(videos: DIR/<name>.mp4); with one video input, a file name ending in .mp4."),
        saliency_dir: Optional[Path] = typer.Option(None, "--save-saliency",
                                                    help="Write each face's crop | saliency map | "
                                                         "reweighted crop triplet (papers' Figure 2) "
                                                         "into DIR (images only)."),
        detector: str = typer.Option("auto", help="Face detector: auto (yunet if installed, else "
                                                  "the bundled blazeface), yunet, blazeface, "
                                                  "dlib-hog, mediapipe, or whole (treat each image "
                                                  "as one face crop)."),
        tasks: str = typer.Option("age,gender,expression",
                                  help="Comma-separated tasks to answer."),
        model: str = typer.Option("default", help="'default' (the shipped model for each task) or "
                                                  "a bundled model name (see `salface models`)."),
        detect_only: bool = typer.Option(False, "--detect-only",
                                         help="Only detect, crop and compute saliency; no "
                                              "classification (works before any model is trained)."),
        saliency: Optional[str] = typer.Option(None, help="Override the models' saliency model "
                                                          "(mlnet, spectral-residual, frequency-tuned, "
                                                          "centre, none); an ablation."),
        ratio: Optional[float] = typer.Option(None, min=0.0, max=1.0,
                                              help="Override the reweighted ratio r (an ablation)."),
        device: str = typer.Option("cpu", help="cpu, cuda or auto."),
        backend: str = typer.Option("auto", help="auto (ONNX Runtime, the bundled ONNX files; no "
                                                 "torch), onnx, or torch (pip install "
                                                 "salface[torch])."),
        threads: Optional[int] = typer.Option(None, min=1, help="Threads per network (default: "
                                                                "$SALFACE_THREADS or one per core)."),
        batch_size: int = typer.Option(12, min=1, help="Faces per network batch (12: fastest on 2 CPU cores; peak memory about 0.3 GB)."),
        detect_size: Optional[int] = typer.Option(None, "--detect-size", min=32,
                                                  help="YuNet: shrink images whose longer side "
                                                       "exceeds this before detection (default "
                                                       "640; 1280 finds smaller faces, slower)."),
        min_face: Optional[float] = typer.Option(None, "--min-face", min=10,
                                                 help="YuNet: smallest face worth finding, px; "
                                                      "20 detects at half size (faster; see "
                                                      "docs/detectors.md)."),
        max_faces: Optional[int] = typer.Option(None, min=1, help="Keep at most N faces per image "
                                                                  "(highest detector score first)."),
        fast: bool = typer.Option(False, "--fast", help="The fast profile: one network for age and "
                                  "gender, INT8 ML-Net, no flip TTA (20–60 % more faces/s; "
                                  "accuracy cost in docs/pipeline.md)."),
        prior_correction: bool = typer.Option(False, "--prior-correction/--no-prior-correction",
                                              help="Apply the expression model's shipped prior "
                                                   "correction: rare expressions (fear, disgust) are "
                                                   "not drowned by FER+'s neutral/happy majority "
                                                   "(FER+ test: mean per class +3.5 points, accuracy "
                                                   "−1.05; docs/training.md)."),
        source_frame: bool = typer.Option(False, "--source-frame/--no-source-frame",
                                          help="Crop each face as if the photo ended where the "
                                               "models' training photos end around the face "
                                               "(docs/pipeline.md, 'Source frame')."),
        every: int = typer.Option(1, "--every", min=1, help="Video: analyse every N-th frame."),
        fps: Optional[float] = typer.Option(None, "--fps", min=0.001,
                                            help="Video: analyse about F frames per second "
                                                 "(instead of --every)."),
        smooth: float = typer.Option(0.3, "--smooth", min=0.001, max=1.0,
                                     help="Video: weight α of each new frame in a track's moving "
                                          "average of the probabilities (1 = no smoothing)."),
        track_iou: float = typer.Option(0.3, "--track-iou", min=0.01, max=1.0,
                                        help="Video: smallest box IoU that continues a track."),
        max_missed: int = typer.Option(5, "--max-missed", min=0,
                                       help="Video: analysed frames a track may miss before it ends."),
        max_frames: Optional[int] = typer.Option(None, "--max-frames", min=1,
                                                 help="Video: stop after N analysed frames."),
        duration: Optional[float] = typer.Option(None, "--duration", min=0.0,
                                                 help="Video: stop after S seconds of video."),
        summary: Optional[Path] = typer.Option(None, "--summary",
                                               help="Video: write the per-track summary (frames, "
                                                    "times, majority and mean labels, timelines) "
                                                    "as JSON to this file."),
        plot: Optional[Path] = typer.Option(None, "--plot",
                                            help="Video: plot each track's expression over time "
                                                 "to this image (needs matplotlib)."),
        progress: bool = typer.Option(True, "--progress/--no-progress",
                                      help="Show a progress bar on stderr."),
        ray_address: Optional[str] = typer.Option(
            None, "--ray", help="Run on a Ray cluster instead (local, auto, ray://HEAD:10001): "
                                "images only, results to --output (*.parquet or *.jsonl); the "
                                "same as `salface scale` (pip install salface[scale])."),
    ) -> None:
        """Detect every face, crop it with a 30 % margin, weight it by its saliency map and
        classify age group, gender and expression — in images, video files and camera frames.

        Videos: the sampled frames' faces are followed with an IoU tracker (a track id per face)
        and each track's probabilities are smoothed over time; one JSON line per frame.

        Exit code 0: every input was read; 1: at least one input failed (a missing path, an empty
        folder, an unreadable image or video: its error is in the output, the other inputs'
        results are kept); 2: usage or model problems, or no input exists at all.
        """
        from ..errors import DependencyError
        from ..hub import MissingModelError
        from ..pipeline import Analyzer
        from ..utils import optional_import

        if ray_address is not None:  # the cluster engine: one Analyzer per Ray actor
            from .scale import run_scale

            if output is None or camera is not None:
                raise _usage("--ray needs --output results.parquet|.jsonl and image paths")
            run_scale(paths or [], output, ray_address=ray_address, detector=detector,
                      tasks=tasks, model=model, detect_only=detect_only, device=device,
                      backend=backend, threads=threads, batch_size=batch_size,
                      max_faces=max_faces, progress=progress, fast=fast)
            return
        items = expand_inputs(paths or [])
        if camera is not None:
            items.append(camera)
        if not items:
            raise _usage("give image or video paths, or --camera N")
        kinds = [_kind(i) for i in items]
        if all(k == "error" for k in kinds):   # nothing to analyse: a usage error
            with _open_output(output) as out:
                writer = _Writer(fmt or Format.json, out)
                for row in items:
                    writer.add(row)
                    err.print(f"[red]error:[/red] {row.source}: {row.error}")
                writer.close()
            raise typer.Exit(2)
        n_videos = kinds.count("video")
        if fps is not None and every != 1:
            raise _usage("give --every or --fps, not both")
        if annotate_dir is not None and annotate_dir.suffix.lower() in (".mp4", ".m4v", ".mov") \
                and (n_videos != 1 or "image" in kinds):
            raise _usage(f"--annotate {annotate_dir} names one video file; give a folder for "
                         f"{'images' if 'image' in kinds else 'several videos'}")
        if plot is not None and n_videos:
            try:
                optional_import("matplotlib", "notebook", "--plot")
            except DependencyError as exc:
                raise _usage(str(exc))
        fmt = fmt or (Format.jsonl if n_videos else Format.json)
        task_list = tuple(t.strip() for t in tasks.split(",") if t.strip())
        try:
            det_options = {k: v for k, v in (("max_side", detect_size), ("min_face", min_face))
                           if v is not None} if detector in ("yunet", "yunet+blazeface", "auto") else None
            analyzer = Analyzer(detector=detector, model=None if detect_only else model,
                                detector_options=det_options,
                                tasks=task_list, saliency=saliency, ratio=ratio, device=device,
                                batch_size=batch_size, return_saliency=saliency_dir is not None,
                                keep_images=annotate_dir is not None, max_faces=max_faces,
                                backend=backend, threads=threads, prior_correction=prior_correction,
                                fast=fast and not detect_only, source_frame=source_frame)
        except MissingModelError as exc:
            from ..hub import DEFAULT_MODELS, load_manifest

            shipped_models = load_manifest()["models"]
            err.print(f"[red]missing model:[/red] {escape(str(exc))}")
            shipped = [t for t in task_list if DEFAULT_MODELS.get(t) in shipped_models]
            if shipped and model == "default":
                err.print(f"Shipped now: --tasks {','.join(shipped)}. ", end="")
            err.print("Use --detect-only to run detection and saliency without a classifier.")
            raise typer.Exit(2)
        except (ValueError, RuntimeError, ImportError) as exc:
            raise _usage(str(exc))
        r = ratio if ratio is not None else (
            analyzer.groups[0].config.ratio if analyzer.groups else 0.3)
        vopts = VideoOptions(every=every, fps=fps, smooth=smooth, track_iou=track_iou,
                             max_missed=max_missed, max_frames=max_frames, duration=duration,
                             annotate=annotate_dir, progress=progress)

        failed, runs, interrupted = 0, [], None
        with _open_output(output) as out:
            writer = _Writer(fmt, out, VIDEO_CSV_FIELDS if n_videos else CSV_FIELDS)
            try:
                for kind, group in groupby(zip(kinds, items), key=lambda ki: ki[0]):
                    group = [item for _, item in group]
                    if kind == "error":
                        for row in group:
                            writer.add(row)
                            err.print(f"[yellow]skipped[/yellow] {row.source}: {row.error}")
                        failed += len(group)
                    elif kind == "image":
                        failed += _run_images(analyzer.analyze_batch(group), writer, len(group),
                                              annotate_dir, saliency_dir, r,
                                              progress and len(items) > 1)
                    else:
                        for source in group:
                            run, stopped = _run_video(analyzer, source, writer, vopts)
                            runs.append(run)
                            failed += run.error is not None
                            if stopped:   # Ctrl-C: the normal end of a camera, else an abort
                                interrupted = "camera" if isinstance(source, int) else "file"
                                break
                    if interrupted:
                        break
            finally:
                writer.close()
        if runs:
            _write_video_reports(runs, summary, plot)
        n_inputs = len(items)
        note = f"{n_inputs - failed}/{n_inputs} inputs analysed"
        if interrupted == "file":
            err.print(f"[yellow]{note}; interrupted[/yellow]")
            raise typer.Exit(130)
        if failed:
            err.print(f"[yellow]{note}; {failed} failed[/yellow]")
            raise typer.Exit(1)
        if progress and n_inputs > 1:
            err.print(note)
