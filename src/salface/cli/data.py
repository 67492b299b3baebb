"""``salface splits`` and ``salface datasets``: the project's standard splits and the dataset readers."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("splits")
    def splits(
        name: str = typer.Argument(..., help="Standard split to build: ferplus or utkface."),
        shared: Path = typer.Option(Path("../shared"), "--shared", help="The shared data folder (holds data/)."),
        out: Path = typer.Option(Path("cache/splits"), "--out", help="Folder for <name>.jsonl and <name>.report.json."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress messages."),
    ) -> None:
        """Write a standard leakage-safe split (deterministic) and print counts per split and class."""
        from salface.data import DatasetError
        from salface.data.splits import STANDARD_SPLITS, standard_split

        if name not in STANDARD_SPLITS:
            typer.echo(f"error: unknown split {name!r}; choose one of {', '.join(STANDARD_SPLITS)}", err=True)
            raise typer.Exit(2)
        try:
            rep = standard_split(name, shared, out, verbose=not quiet)
        except DatasetError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        typer.echo(f"wrote {rep.path}")
        for split, c in rep.counts.items():
            parts = [f"{split}: {c['n']}"]
            for task, per in c.items():
                if task != "n":
                    parts.append(f"  {task}: " + ", ".join(f"{k} {v}" for k, v in per.items()))
            typer.echo("\n".join(parts))
        for k, v in rep.notes.items():
            if k.endswith(("duplicates", "removed_also_in_test", "removed_also_in_val_or_test")) or k == "warning":
                typer.echo(f"{k}: {v}")

    @app.command("datasets")
    def datasets() -> None:
        """List the dataset readers, their layouts and the tasks they label."""
        from salface.data import READERS

        for name, (func, tasks, layout) in READERS.items():
            typer.echo(f"{name:<16} {func:<48} {','.join(tasks):<22} {layout}")
