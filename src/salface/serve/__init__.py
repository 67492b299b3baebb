"""``salface serve``: an HTTP API and a web page over the :class:`~salface.pipeline.Analyzer`.

* :mod:`.limits` — :class:`Settings` (every limit the server enforces), the request gate that
  bounds concurrent work, and the request-body size guard. No FastAPI needed to import it.
* :mod:`.service` — the work done per request (decode with :func:`salface.io.load_image`'s size
  limits, detect, analyse, explanation panels, model list). One :class:`Service` (and one
  Analyzer) per server process. No FastAPI needed either.
* :mod:`.app` — the FastAPI application: ``create_app(settings)``. Needs ``pip install
  salface[serve]`` (FastAPI, Uvicorn, python-multipart).
* ``static/`` — the web page served at ``/`` (plain HTML, JavaScript and CSS; no build step, no CDN).

See ``docs/serve.md``.
"""

from __future__ import annotations

from .limits import Settings

__all__ = ["Settings"]
