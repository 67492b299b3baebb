"""``salface models`` (what is known, installed and intact), ``salface models export-onnx`` (an
ONNX copy of a bundled model) and ``salface fetch`` (install a file)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .. import hub as W
from ..errors import SalfaceError

err = Console(stderr=True)


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


def _human(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def model_rows() -> list[dict[str, Any]]:
    """One plain dict per known model: bundled ones from the manifest, then remote files."""
    rows: list[dict[str, Any]] = []
    d = W.bundled_dir()
    manifest = W.load_manifest()
    for name, e in sorted(manifest["models"].items()):
        path = d / e.get("file", f"{name}.safetensors")
        cfg = e.get("config") or {}
        tasks = cfg.get("tasks") if isinstance(cfg, dict) else None
        # the file the default (ONNX Runtime) backend runs: the detector's own file, else the
        # variant the manifest names (INT8 where it passed its trial), else the float export
        variant = None if e.get("kind") == "detector" else e.get("runtime_variant", "onnx")
        runs = (e.get(variant) or {}).get("file") if variant else e.get("file")
        status = W.bundled_status(name)
        if runs and variant and status == "ok":  # both files checked; no ONNX file: not runnable
            status = W.bundled_status(name, variant=variant)
        rows.append({
            "name": name, "source": "bundled", "kind": e.get("kind", "?"),
            "tasks": list(tasks) if tasks else [],
            "default_for": [t for t, m in W.DEFAULT_MODELS.items() if m == name],
            "path": str(path), "size": _size(path), "runs": runs, "runs_size": _size(d / runs) if runs else None,
            "sha256": e.get("sha256"), "status": status,
            "license": e.get("license"), "created": e.get("created"), "metrics": e.get("metrics"),
        })
    for rf in W.REMOTE_FILES.values():
        path = W.remote_path(rf.name)
        st = W.verify_remote(rf.name)
        rows.append({
            "name": rf.name, "source": "remote", "kind": "detector", "tasks": ["detection"],
            "path": str(path), "size": _size(path), "sha256": rf.sha256,
            "status": {"ok": "installed", "missing": "not installed"}.get(st, st),
            "license": rf.license, "url": rf.url,
        })
    return rows


_STYLE = {"ok": "green", "installed": "green", "mismatch": "bold red", "missing": "yellow",
          "not installed": "yellow"}


def _update_classifier_config(name: str, change, reason_field: str, reason: str) -> dict[str, Any]:
    """Apply ``change`` (edits a dict in place) to a deep copy of bundled classifier ``name``'s
    config, validate it, and record it with ``{reason_field: reason}`` in the manifest; prints the
    error and exits with 1 when the model is not a classifier or the config is refused."""
    from ..models.config import ClassifierConfig

    try:
        entry = W.bundled_entry(name)
        if entry.get("kind") != "classifier":
            raise ValueError(f"{name} is not a classifier")
        cfg = json.loads(json.dumps(entry["config"]))
        change(cfg)
        ClassifierConfig.from_dict(cfg)
        W.update_bundled_entry(name, {"config": cfg, reason_field: reason})
    except (SalfaceError, ValueError) as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(1)
    return cfg


def register(app: typer.Typer) -> None:
    models_app = typer.Typer(invoke_without_command=True, no_args_is_help=False)
    app.add_typer(models_app, name="models")

    @models_app.callback()
    def models_cmd(
        ctx: typer.Context,
        as_json: bool = typer.Option(False, "--json", help="Print the list as JSON."),
    ) -> None:
        """List every known model: bundled weights (SHA-256 checked now; "runs" is the file the
        default ONNX Runtime backend runs) and downloadable files."""
        if ctx.invoked_subcommand is not None:
            return
        try:
            rows = model_rows()
        except RuntimeError as exc:  # unreadable manifest
            err.print(f"[red]error:[/red] {escape(str(exc))}")
            raise typer.Exit(1)
        if as_json:
            typer.echo(json.dumps({"bundled_dir": str(W.bundled_dir()),
                                   "cache_dir": str(W.cache_dir()), "models": rows}, indent=2))
        else:
            table = Table(title="salface models")
            for col in ("name", "source", "kind", "tasks", "runs", "status", "sha256"):
                table.add_column(col, no_wrap=col in ("name", "status"))
            for r in rows:
                style = _STYLE.get(r["status"], "")
                runs = (f"{r['runs']} ({_human(r['runs_size'])})" if r.get("runs")
                        else _human(r["size"]))
                tasks = ", ".join(t + ("*" if t in r.get("default_for", ()) else "") for t in r["tasks"])
                table.add_row(r["name"], r["source"], r["kind"], tasks or "-",
                              runs, f"[{style}]{r['status']}[/{style}]" if style
                              else r["status"], (r["sha256"] or "")[:12])
            Console().print(table)
            Console().print("* the default model for that task (`Analyzer()`, `salface analyze`)\n"
                            f"bundled: {W.bundled_dir()}\ncache:   {W.cache_dir()}")
        if any(r["status"] == "mismatch" for r in rows):
            raise typer.Exit(1)

    @models_app.command("export-onnx")
    def export_onnx_cmd(
        name: str = typer.Argument(..., help="A bundled classifier or saliency model "
                                             "(see `salface models`)."),
        out: Path = typer.Option(..., "--out", help="Write the .onnx file here."),
    ) -> None:
        """Export a bundled model to an ONNX file of your own (dynamic batch; one output per
        task). Needs the [train] extra (torch, onnxscript)."""
        from ..models.onnx import export_onnx

        try:
            path = export_onnx(name, out)
        except (SalfaceError, ImportError, ValueError) as exc:
            err.print(f"[red]error:[/red] {escape(str(exc))}")
            raise typer.Exit(1)
        typer.echo(f"{name}: {path}")

    @models_app.command("bundle-onnx")
    def bundle_onnx_cmd(
        names: list[str] = typer.Argument(..., help="Bundled classifiers or saliency models."),
    ) -> None:
        """Write each model's ONNX file into the package (what the default runtime runs), after
        checking it against the torch network; records its SHA-256 and the parity in the
        manifest. Needs the [train] extra."""
        from ..models.onnx import bundle_onnx

        failed = False
        for name in names:
            try:
                path = bundle_onnx(name)
            except (SalfaceError, ImportError, ValueError, RuntimeError) as exc:
                err.print(f"[red]error:[/red] {escape(str(name))}: {escape(str(exc))}")
                failed = True
                continue
            entry = W.bundled_entry(name)["onnx"]
            typer.echo(f"{name}: {path} (sha256 {entry['sha256']}; parity {entry['parity_vs_torch']})")
        if failed:
            raise typer.Exit(1)

    @models_app.command("set-variant")
    def set_variant_cmd(
        name: str = typer.Argument(..., help="A bundled classifier or saliency model."),
        variant: str = typer.Argument(..., help="onnx (float) or onnx_int8 (where bundled)."),
        reason: str = typer.Option(..., "--reason", help="Why (recorded in the manifest), e.g. the "
                                                         "report that measured it."),
    ) -> None:
        """Choose which of a model's bundled ONNX files the runtime runs by default (``variant="auto"``).
        The other file stays bundled and checked; ``Analyzer(variant=...)`` still picks either."""
        if variant not in ("onnx", "onnx_int8"):
            err.print(f"[red]error:[/red] variant must be onnx or onnx_int8, got {escape(variant)!r}")
            raise typer.Exit(2)
        try:
            entry = W.bundled_entry(name)
            if variant not in entry:
                raise ValueError(f"{name} has no bundled {variant} file")
            W.update_bundled_entry(name, {"runtime_variant": variant, "runtime_variant_reason": reason})
        except (SalfaceError, ValueError) as exc:
            err.print(f"[red]error:[/red] {escape(str(exc))}")
            raise typer.Exit(1)
        typer.echo(f"{name}: the runtime now runs {entry[variant]['file']} ({variant})")

    @models_app.command("set-frame")
    def set_frame_cmd(
        name: str = typer.Argument(..., help="A bundled classifier."),
        frame: str = typer.Argument(..., help="left,top,right,bottom in box widths/heights (from "
                                              "`salface cache frame`), or 'none' to remove it."),
        reason: str = typer.Option(..., "--reason", help="Where the numbers come from (recorded in "
                                                         "the manifest), e.g. the frame reports."),
    ) -> None:
        """Record where a model's training photos end around the face (``config.frame``): the
        pipeline then crops photos as if they ended there (``Analyzer(source_frame=True)``)."""
        def change(cfg: dict[str, Any]) -> None:
            if frame.strip().lower() == "none":
                cfg.pop("frame", None)
            else:
                cfg["frame"] = [float(v) for v in frame.split(",")]  # validated with the config

        cfg = _update_classifier_config(name, change, "frame_reason", reason)
        typer.echo(f"{name}: frame {cfg.get('frame')}")

    @models_app.command("set-align")
    def set_align_cmd(
        name: str = typer.Argument(..., help="A bundled classifier (margin crop)."),
        align: str = typer.Argument(..., help="'on': level the eyes before cropping (faces with "
                                              "landmarks); 'off': the plain margin crop."),
        reason: str = typer.Option(..., "--reason", help="Why (recorded in the manifest), e.g. "
                                                         "the comparison report."),
        min_tilt: float = typer.Option(0.0, "--min-tilt", help="With 'on': level only eye lines "
                                       "tilted at least this many degrees; faces closer to upright "
                                       "keep the upright crop (0: level every face)."),
    ) -> None:
        """Record whether the pipeline levels the eyes (``config.align``, and from which tilt,
        ``config.align_min_tilt``) before cutting a model's margin crop, for the model and, in an
        ensemble, each member."""
        value = {"on": True, "off": False}.get(align.strip().lower())
        if value is None:
            err.print(f"[red]error:[/red] align must be 'on' or 'off', got {escape(align)!r}")
            raise typer.Exit(2)
        if not 0.0 <= min_tilt < 90.0 or (min_tilt and not value):
            err.print(f"[red]error:[/red] --min-tilt must be in [0, 90) degrees and needs 'on', "
                      f"got {min_tilt:g} with {escape(align)!r}")
            raise typer.Exit(2)

        def change(cfg: dict[str, Any]) -> None:
            if cfg.get("crop_mode", "margin") != "margin":
                raise ValueError(f"{name} uses the {cfg['crop_mode']!r} crop, which aligns by itself")
            for part in [cfg, *cfg.get("extra", {}).get("members", [])]:
                part["align"] = value
                if min_tilt:
                    part["align_min_tilt"] = float(min_tilt)
                else:
                    part.pop("align_min_tilt", None)

        _update_classifier_config(name, change, "align_reason", reason)
        typer.echo(f"{name}: align {'on' if value else 'off'}"
                   + (f" from {min_tilt:g}° of tilt" if min_tilt else ""))

    @models_app.command("set-resolution")
    def set_resolution_cmd(
        name: str = typer.Argument(..., help="A bundled classifier (margin crop)."),
        pixels: str = typer.Argument(..., help="The crop square's largest side in the photo's own "
                                               "pixels (its training photos' resolution, e.g. from "
                                               "benchmarks/resolution_mirror.py measure), or 'none'."),
        reason: str = typer.Option(..., "--reason", help="Why (recorded in the manifest), e.g. "
                                                         "the comparison report."),
    ) -> None:
        """Record the resolution a model learned from (``config.max_crop_px``): a face whose crop
        square spans more photo pixels is cut at that many and then enlarged to the input size, for
        the model and, in an ensemble, each member."""
        remove = pixels.strip().lower() == "none"
        try:
            value = 0.0 if remove else float(pixels)
        except ValueError:
            value = -1.0
        if not (remove or 1.0 <= value < 1e6):
            err.print(f"[red]error:[/red] pixels must be a number >= 1 or 'none', got {escape(pixels)!r}")
            raise typer.Exit(2)

        def change(cfg: dict[str, Any]) -> None:
            if cfg.get("crop_mode", "margin") != "margin":
                raise ValueError(f"{name} uses the {cfg['crop_mode']!r} crop; the cap is for margin crops")
            for part in [cfg, *cfg.get("extra", {}).get("members", [])]:
                if value:
                    part["max_crop_px"] = value
                else:
                    part.pop("max_crop_px", None)

        _update_classifier_config(name, change, "resolution_reason", reason)
        typer.echo(f"{name}: " + (f"crop squares seen at no more than {value:g} photo pixels" if value
                                   else "no resolution cap"))

    @app.command("fetch")
    def fetch_cmd(
        name: str = typer.Argument(..., help=f"Model file to install: {', '.join(W.REMOTE_FILES)}."),
        source: Optional[str] = typer.Option(
            None, "--from", help="Local file or URL to install from instead of the public URL "
                                 "(offline machines)."),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
    ) -> None:
        """Install a downloadable model file into the cache, verifying its SHA-256."""
        if name not in W.REMOTE_FILES:
            err.print(f"[red]error:[/red] unknown model {name!r}; downloadable: "
                      f"{', '.join(sorted(W.REMOTE_FILES))}")
            raise typer.Exit(2)
        if source is None and W.verify_remote(name) == "mismatch":
            source = W.REMOTE_FILES[name].url  # a corrupt cached copy: fetch it again
        try:
            path = W.ensure_file(name, source=source, progress=progress)
        except (W.ChecksumError, W.MissingModelError) as exc:
            err.print(f"[red]error:[/red] {escape(str(exc))}")
            raise typer.Exit(1)
        typer.echo(f"{name}: {path} (sha256 {W.REMOTE_FILES[name].sha256} verified)")
