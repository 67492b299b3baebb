"""``salface serve``: the HTTP API and web page (:mod:`salface.serve`); a thin shell over
:func:`salface.serve.app.run`. Needs ``pip install salface[serve]``."""

from __future__ import annotations

import importlib.util

import typer
from rich.console import Console
from rich.markup import escape

err = Console(stderr=True)


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve_cmd(
        host: str = typer.Option("127.0.0.1", help="Address to listen on (0.0.0.0: every interface)."),
        port: int = typer.Option(8000, help="TCP port."),
        workers: int = typer.Option(1, min=1, help="Worker processes; each loads its own models."),
        max_upload_mb: float = typer.Option(20.0, help="Largest upload accepted (MiB); larger: 413."),
        max_pixels: int = typer.Option(40_000_000, help="Largest image accepted (width × height, "
                                                        "read from the header before decoding); "
                                                        "larger: 413."),
        max_faces: int = typer.Option(20, min=1, help="Most faces analysed per image (a request may "
                                                      "ask for fewer)."),
        max_concurrent: int = typer.Option(2, min=1, help="Requests analysed at once per worker "
                                                          "(threads in its pool)."),
        max_queue: int = typer.Option(16, min=0, help="Requests that may wait for a slot; beyond "
                                                      "that: 503 with Retry-After."),
        timeout: float = typer.Option(30.0, help="Seconds a request may take, waiting included; "
                                                 "then 504."),
        detector: str = typer.Option("auto", help="Default detector: auto (yunet if installed, "
                                                  "else the bundled blazeface), yunet, blazeface, "
                                                  "dlib-hog, mediapipe or whole."),
        tasks: str = typer.Option("age,gender,expression", help="Tasks whose models are loaded."),
        backend: str = typer.Option("auto", help="auto or onnx (ONNX Runtime, the bundled ONNX "
                                                 "files), or torch (needs salface[torch])."),
        device: str = typer.Option("cpu", help="cpu, cuda or auto."),
        fast: bool = typer.Option(False, "--fast", help="Serve the fast profile of the default "
                                  "models (as for analyze --fast)."),
        log_level: str = typer.Option("info", help="Uvicorn log level."),
    ) -> None:
        """Serve the HTTP API (POST /v1/analyze, POST /v1/explain, GET /v1/models, GET /health;
        OpenAPI at /docs) and the web page at /. Models load once per worker, at start-up."""
        missing = [m for m in ("fastapi", "uvicorn", "multipart")
                   if importlib.util.find_spec(m) is None]
        if missing:
            err.print(f"[red]error:[/red] salface serve needs {', '.join(missing)}: "
                      'pip install "salface[serve]"')
            raise typer.Exit(2)
        from ..serve.app import run
        from ..serve.limits import Settings

        try:
            settings = Settings(
                host=host, port=port, workers=workers, max_upload_mb=max_upload_mb,
                max_pixels=max_pixels, max_faces=max_faces, max_concurrent=max_concurrent,
                max_queue=max_queue, timeout=timeout, detector=detector,
                tasks=tuple(t.strip() for t in tasks.split(",") if t.strip()), backend=backend,
                device=device, fast=fast, log_level=log_level)
        except ValueError as exc:
            err.print(f"[red]error:[/red] {escape(str(exc))}")
            raise typer.Exit(2)
        run(settings)
