"""``salface demo``: the whole pipeline on the bundled example portrait, offline."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

err = Console(stderr=True)

EXAMPLE = Path(__file__).resolve().parents[1] / "bundled" / "examples" / "astronaut.jpg"
"""NASA's portrait of Eileen Collins (public domain), shipped with the package."""


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo_cmd(
        out: Path = typer.Option(Path("salface-demo"), "--out",
                                 help="Folder for the annotated image and the saliency triplet."),
        backend: str = typer.Option("auto", help="auto (ONNX Runtime), onnx or torch."),
    ) -> None:
        """Analyse the bundled astronaut portrait (NASA, public domain) with the shipped models:
        prints the JSON result, writes OUT/astronaut.jpg (boxes and labels) and
        OUT/astronaut_face0.png (crop | ML-Net saliency | reweighted). Works offline right after
        `pip install salface`: faces are found by YuNet when it is installed (`salface fetch
        yunet`), else by the bundled BlazeFace; the JSON's "detector" says which."""
        from ..errors import SalfaceError
        from ..pipeline import Analyzer
        from ..viz import annotate, saliency_triplet, save_rgb

        try:
            analyzer = Analyzer(backend=backend, return_saliency=True, keep_images=True)
            (result,) = list(analyzer.analyze_batch([EXAMPLE]))
        except SalfaceError as exc:
            err.print(f"[red]error:[/red] {escape(str(exc))}")
            raise typer.Exit(1)
        if result.error:
            err.print(f"[red]error:[/red] {result.source}: {result.error}")
            raise typer.Exit(1)
        out.mkdir(parents=True, exist_ok=True)
        written = [save_rgb(out / "astronaut.jpg", annotate(result.image, result.faces))]
        ratio = analyzer.groups[0].config.ratio if analyzer.groups else 0.3
        for i, f in enumerate(result.faces):
            if f.crop is not None and f.saliency is not None:
                written.append(save_rgb(out / f"astronaut_face{i}.png",
                                        saliency_triplet(f.crop, f.saliency, ratio)))
        typer.echo(json.dumps(result.to_dict(), indent=2))
        for p in written:
            err.print(f"wrote {p}")
