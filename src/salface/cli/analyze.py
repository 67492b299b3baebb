"""``salface analyze``: the main job, over files, folders and globs."""

from __future__ import annotations

import csv
import json
import sys
from contextlib import nullcontext
from enum import Enum
from pathlib import Path
from typing import IO, Optional

import typer
from rich.console import Console

err = Console(stderr=True)


class Format(str, Enum):
    json = "json"
    jsonl = "jsonl"
    csv = "csv"


CSV_FIELDS = ["source", "face", "x1", "y1", "x2", "y2", "score", "age", "age_confidence", "gender",
              "gender_confidence", "expression", "expression_confidence", "error"]


def csv_rows(result) -> list[dict]:
    """One CSV row per face; an image with no face (or an error) still gets one row."""
    base = {"source": result.source, "error": result.error or ""}
    if not result.faces:
        return [base]
    rows = []
    for i, f in enumerate(result.faces):
        row = dict(base, face=i, score=round(f.face.score, 4))
        row.update(zip(("x1", "y1", "x2", "y2"), (round(v, 1) for v in f.face.box.as_tuple())))
        for task, p in f.predictions().items():
            row[task] = p.label
            row[f"{task}_confidence"] = round(p.confidence, 4)
        rows.append(row)
    return rows


class _Writer:
    """Streams results as they come (JSON Lines, CSV) or collects them (JSON)."""

    def __init__(self, fmt: Format, out: IO[str]):
        self.fmt, self.out, self.items = fmt, out, []
        self.csv = csv.DictWriter(out, CSV_FIELDS) if fmt is Format.csv else None
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


def register(app: typer.Typer) -> None:
    @app.command("analyze")
    def analyze_cmd(
        paths: list[str] = typer.Argument(..., help="Image files, folders (searched recursively) or "
                                          "glob patterns (quote them: 'photos/*.jpg')."),
        output: Optional[Path] = typer.Option(None, "--output", "-o",
                                              help="Write results to this file instead of stdout."),
        fmt: Format = typer.Option(Format.json, "--format", "-f",
                                   help="json: one list; jsonl: one line per image, written as each "
                                        "finishes; csv: one row per face."),
        annotate_dir: Optional[Path] = typer.Option(None, "--annotate",
                                                    help="Write a copy of each image with boxes, "
                                                         "landmarks and labels drawn into DIR."),
        saliency_dir: Optional[Path] = typer.Option(None, "--save-saliency",
                                                    help="Write each face's crop | saliency map | "
                                                         "reweighted crop triplet (papers' Figure 2) "
                                                         "into DIR."),
        detector: str = typer.Option("yunet", help="Face detector: yunet, dlib-hog, mediapipe, or "
                                                   "whole (treat each image as one face crop)."),
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
        backend: str = typer.Option("torch", help="torch, or onnx: run the classifiers and ML-Net "
                                                  "through ONNX Runtime on the CPU (exported on "
                                                  "first use; pip install salface[onnx])."),
        batch_size: int = typer.Option(64, min=1, help="Faces per network batch."),
        max_faces: Optional[int] = typer.Option(None, min=1, help="Keep at most N faces per image "
                                                                  "(highest detector score first)."),
        progress: bool = typer.Option(True, "--progress/--no-progress",
                                      help="Show a progress bar on stderr."),
    ) -> None:
        """Detect every face, crop it with a 30 % margin, weight it by its saliency map and
        classify age group, gender and expression.

        Exit code 0: every file was read; 1: at least one file failed (its error is in the
        output, the other files' results are kept); 2: usage or model problems.
        """
        from ..io import ImageError, iter_image_paths
        from ..models.weights import MissingModelError
        from ..pipeline import Analyzer
        from ..viz import annotate, save_rgb, saliency_triplet

        try:
            files = iter_image_paths(paths)
        except (ImageError, FileNotFoundError, ValueError) as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2)
        task_list = tuple(t.strip() for t in tasks.split(",") if t.strip())
        want_maps = saliency_dir is not None
        try:
            analyzer = Analyzer(detector=detector, model=None if detect_only else model,
                                tasks=task_list, saliency=saliency, ratio=ratio, device=device,
                                batch_size=batch_size, return_saliency=want_maps,
                                keep_images=annotate_dir is not None, max_faces=max_faces,
                                backend=backend)
        except MissingModelError as exc:
            from ..models.registry import DEFAULT_MODELS, list_classifiers

            err.print(f"[red]missing model:[/red] {exc}")
            shipped = [t for t in task_list if DEFAULT_MODELS.get(t) in list_classifiers()]
            if shipped and model == "default":
                err.print(f"Shipped now: --tasks {','.join(shipped)}. ", end="")
            err.print("Use --detect-only to run detection and saliency without a classifier.")
            raise typer.Exit(2)
        except (ValueError, RuntimeError, ImportError) as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2)

        failed = 0
        show = progress and len(files) > 1
        if output is not None:
            output.parent.mkdir(parents=True, exist_ok=True)
        with (open(output, "w", newline="") if output else nullcontext(sys.stdout)) as out:
            writer = _Writer(fmt, out)
            bar = None
            if show:
                from rich.progress import Progress
                bar = Progress(console=err, transient=True)
                bar.start()
                tid = bar.add_task("analyzing", total=len(files))
            try:
                for res in analyzer.analyze_batch(files):
                    writer.add(res)
                    if res.error is not None:
                        failed += 1
                        err.print(f"[yellow]skipped[/yellow] {res.source}: {res.error}")
                    else:
                        stem = Path(res.source).stem
                        if annotate_dir is not None:
                            save_rgb(annotate_dir / f"{stem}.jpg",
                                     annotate(res.image, res.faces))
                        if want_maps:
                            r = ratio if ratio is not None else (
                                analyzer.groups[0].config.ratio if analyzer.groups else 0.3)
                            for i, f in enumerate(res.faces):
                                if f.saliency is not None and f.crop is not None:
                                    save_rgb(saliency_dir / f"{stem}_face{i}.png",
                                             saliency_triplet(f.crop, f.saliency, r))
                    if bar is not None:
                        bar.advance(tid)
            finally:
                if bar is not None:
                    bar.stop()
                writer.close()
        n_faces_note = f"{len(files) - failed}/{len(files)} files analysed"
        if failed:
            err.print(f"[yellow]{n_faces_note}; {failed} failed[/yellow]")
            raise typer.Exit(1)
        if show:
            err.print(n_faces_note)
