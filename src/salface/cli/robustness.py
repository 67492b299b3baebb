"""``salface robustness``: the robustness benchmark (:mod:`salface.evaluation.robustness`)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command("robustness")
    def robustness_cmd(
        dataset: str = typer.Option(..., "--dataset", help="utkface (age, gender) or ferplus (expression)."),
        data: Optional[Path] = typer.Option(None, "--data", help="The dataset's folder, if its images are not where the split file says (e.g. ../shared/data/utkface)."),
        split_file: Optional[Path] = typer.Option(None, "--split-file", help="Split file from `salface splits DATASET` (default cache/splits/DATASET.jsonl)."),
        split: str = typer.Option("test", "--split", help="Which of its splits to render: test, or val to choose between candidates without reading test."),
        limit: Optional[int] = typer.Option(400, "--limit", help="Faces in the seeded, stratified subset of the test split (0: all)."),
        seed: int = typer.Option(0, "--seed", help="Seed of the subset and of every condition's random choices."),
        conditions: str = typer.Option("all", "--conditions", help="Comma-separated condition names, or 'all' (see --list)."),
        backend: str = typer.Option("onnx", "--backend", help="torch or onnx (faster on the CPU)."),
        model: str = typer.Option("default", "--model", help="'default' (the shipped model per task) or a bundled model name."),
        out: Path = typer.Option(Path("docs/benchmarks/robustness"), "--out", help="Folder for DATASET.json and DATASET.md."),
        work: Optional[Path] = typer.Option(None, "--work", help="Resumable work folder (default cache/robustness/DATASET-nN-seedS)."),
        detector_model: Optional[Path] = typer.Option(None, "--detector-model", help="YuNet .onnx file, if not installed."),
        batch_size: int = typer.Option(64, "--batch-size", help="Faces per network batch."),
        detector: str = typer.Option("auto", "--detector", help="The Analyzer's detector on the rendered images: auto (the default pipeline's with YuNet installed: yunet+blazeface), yunet, blazeface, ...; YuNet's clean faces place the conditions whatever it is."),
        source_frame: bool = typer.Option(False, "--source-frame/--no-source-frame", help="Crop as if each photo ended at the model's training frame (`Analyzer(source_frame=...)`)."),
        list_conditions: bool = typer.Option(False, "--list", help="List the conditions and their severities, then exit."),
    ) -> None:
        """Accuracy of the shipped models under re-rendered test faces (resolution, JPEG, blur, noise,
        exposure, contrast, colour, occlusion, rotation, yaw, crop margin, off-centre boxes, other detectors),
        end to end through `analyze`, per condition, severity and group, with consistency and the issue's checks."""
        from ..evaluation.robustness import CONDITIONS, DATASETS, benchmark

        if list_conditions:
            for c in CONDITIONS:
                typer.echo(f"{c.name:18s} {c.kind:12s} {[dict(lv) for lv in c.levels]}  {c.description}")
            raise typer.Exit()
        if dataset not in DATASETS:
            raise typer.BadParameter(f"{dataset!r}: expected one of {', '.join(DATASETS)}", param_hint="--dataset")
        split_file = split_file or Path("cache/splits") / f"{dataset}.jsonl"
        if not split_file.is_file():
            raise typer.BadParameter(f"{split_file}: not found; write it with `salface splits {dataset}`",
                                     param_hint="--split-file")
        try:
            md = benchmark(dataset, split_file=split_file, data=data, limit=limit or None, seed=seed,
                           conditions=conditions, backend=backend, model=model, out_dir=out, work_dir=work,
                           detector_model=detector_model, batch_size=batch_size, source_frame=source_frame,
                           detector=detector, split=split,
                           command="salface " + " ".join(shlex.quote(a) for a in sys.argv[1:]))
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2)
        typer.echo(f"→ {md} and {md.with_suffix('.json')}")

    @app.command("robustness-compare")
    def robustness_compare_cmd(
        a: Path = typer.Argument(..., help="Report A (the baseline), DATASET.json from `salface robustness`."),
        b: Path = typer.Argument(..., help="Report B (the candidate), on the same faces."),
        out: Optional[Path] = typer.Option(None, "--out", help="Write the comparison here as .md and .json (default: print)."),
    ) -> None:
        """Paired comparison of two robustness reports: McNemar per condition, bootstrap and Wilcoxon on the mean."""
        import json

        from ..evaluation.robustness_compare import compare_reports, comparison_markdown

        try:
            cmp = compare_reports(a, b)
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2)
        md = comparison_markdown(cmp, command="salface " + " ".join(shlex.quote(x) for x in sys.argv[1:]))
        if out is None:
            typer.echo(md)
            return
        stem = out.name[: -len(out.suffix)] if out.suffix in (".md", ".json") else out.name
        md_path, json_path = out.parent / f"{stem}.md", out.parent / f"{stem}.json"  # "x-0.5" keeps its ".5"
        out.parent.mkdir(parents=True, exist_ok=True)
        md_path.write_text(md + "\n")
        json_path.write_text(json.dumps(cmp, indent=1) + "\n")
        typer.echo(f"→ {md_path} and {json_path}")
