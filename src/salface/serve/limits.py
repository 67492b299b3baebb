"""What keeps ``salface serve`` alive: its settings, a gate that bounds the work in flight, and a
guard on request-body size.

* :class:`Settings` — every limit, validated once (the CLI's options map onto its fields).
* :class:`ApiError` — a client-facing error: HTTP status, a short machine-readable ``error`` code
  and a ``detail`` sentence naming the reason. The app turns it into
  ``{"error": ..., "detail": ...}``.
* :class:`Gate` — at most ``max_concurrent`` requests run in the thread pool at once and at most
  ``max_queue`` wait for a slot; beyond that a request is refused at once (503 with
  ``Retry-After``). A slot is released when its worker thread really finishes, not when the
  request times out, so timed-out work still counts against the bound.
* :class:`BodyLimit` — a plain ASGI middleware: a request whose ``Content-Length`` exceeds the
  limit is answered 413 without being parsed (its body is read and dropped up to a cap, so the
  client sees the answer rather than a reset connection); a body without a length (chunked) is
  counted as it arrives and stopped with :class:`ApiError` 413 when it passes the limit.

Nothing here imports FastAPI.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
from dataclasses import asdict, dataclass, fields
from typing import Any, Awaitable, Callable

from ..io import DEFAULT_MAX_PIXELS
from ..labels import TASKS

MB = 1024 * 1024
MULTIPART_OVERHEAD = 64 * 1024
"""Bytes a multipart body may carry beyond the image itself (boundaries, headers, option fields)."""

DETECTORS = ("auto", "yunet", "blazeface", "yunet+blazeface", "dlib-hog", "mediapipe", "whole")
"""Detectors a request may ask for (the CLI's choices); each is built on first use."""

SETTINGS_ENV = "SALFACE_SERVE_SETTINGS"
"""Environment variable that hands the settings (JSON) to worker processes (``--workers`` > 1)."""


@dataclass(frozen=True)
class Settings:
    """Options of ``salface serve`` (same names, ``_`` for ``-``)."""

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    max_upload_mb: float = 20.0
    max_pixels: int = 40_000_000
    max_faces: int = 20
    max_concurrent: int = 2
    max_queue: int = 16
    timeout: float = 30.0
    detector: str = "auto"
    tasks: tuple[str, ...] = ("age", "gender", "expression")
    backend: str = "auto"
    device: str = "cpu"
    fast: bool = False            # the default models' fast profile (Analyzer(fast=True))
    batch_size: int = 32
    log_level: str = "info"

    def __post_init__(self) -> None:
        object.__setattr__(self, "tasks", tuple(self.tasks))
        problems = []
        if not 0 <= self.port <= 65535:
            problems.append(f"port must be in 0..65535, got {self.port}")
        if self.workers < 1:
            problems.append(f"workers must be >= 1, got {self.workers}")
        if not 0 < self.max_upload_mb <= 1024:
            problems.append(f"max_upload_mb must be in (0, 1024], got {self.max_upload_mb}")
        if not 1 <= self.max_pixels <= DEFAULT_MAX_PIXELS:
            problems.append(f"max_pixels must be in 1..{DEFAULT_MAX_PIXELS:,} (salface.io's "
                            f"limit), got {self.max_pixels}")
        if self.max_faces < 1:
            problems.append(f"max_faces must be >= 1, got {self.max_faces}")
        if self.max_concurrent < 1:
            problems.append(f"max_concurrent must be >= 1, got {self.max_concurrent}")
        if self.max_queue < 0:
            problems.append(f"max_queue must be >= 0, got {self.max_queue}")
        if not self.timeout > 0:
            problems.append(f"timeout must be > 0 seconds, got {self.timeout}")
        if self.detector not in DETECTORS:
            problems.append(f"detector must be one of {', '.join(DETECTORS)}, got {self.detector!r}")
        bad = [t for t in self.tasks if t not in TASKS]
        if bad or not self.tasks:
            problems.append(f"tasks must be some of {', '.join(TASKS)}, got {','.join(self.tasks)!r}")
        if self.backend not in ("auto", "onnx", "torch"):
            problems.append(f"backend must be auto, onnx or torch, got {self.backend!r}")
        if self.batch_size < 1:
            problems.append(f"batch_size must be >= 1, got {self.batch_size}")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * MB)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "Settings":
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def from_env(cls) -> "Settings":
        text = os.environ.get(SETTINGS_ENV)
        return cls.from_json(text) if text else cls()


class ApiError(Exception):
    """An error the client caused (4xx) or should retry (503, 504): ``status``, ``error`` code,
    ``detail`` naming the reason, extra response ``headers``."""

    def __init__(self, status: int, error: str, detail: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status} {error}: {detail}")
        self.status, self.error, self.detail = status, error, detail
        self.headers = headers or {}

    def body(self) -> dict[str, str]:
        return {"error": self.error, "detail": self.detail}


class Gate:
    """Bounds the requests doing work: ``max_active`` run, ``max_waiting`` queue, the rest get 503.

    Use from the event loop::

        await gate.acquire(deadline)      # ApiError 503 (full) or 504 (deadline passed in the queue)
        fut = loop.run_in_executor(pool, work)
        gate.release_when_done(fut)       # the slot frees when the thread finishes
    """

    def __init__(self, max_active: int, max_waiting: int) -> None:
        if max_active < 1 or max_waiting < 0:
            raise ValueError("max_active must be >= 1 and max_waiting >= 0")
        self.max_active, self.max_waiting = max_active, max_waiting
        self.active = 0
        self.waiting = 0
        self.refused = 0
        self._sem: asyncio.Semaphore | None = None
        self._service_time = 1.0  # running mean of seconds per request (for Retry-After)

    def _semaphore(self) -> asyncio.Semaphore:
        if self._sem is None:
            self._sem = asyncio.Semaphore(self.max_active)
        return self._sem

    def retry_after(self) -> int:
        """Seconds a refused client should wait: the current backlog at the recent service time."""
        backlog = (self.active + self.waiting) / self.max_active
        return int(min(60, max(1, math.ceil(backlog * self._service_time))))

    async def acquire(self, timeout: float) -> None:
        sem = self._semaphore()
        if sem.locked() or self.waiting:
            if self.waiting >= self.max_waiting:
                self.refused += 1
                raise ApiError(503, "server_busy",
                               f"all {self.max_active} analysis slots are busy and "
                               f"{self.waiting} request(s) are already waiting (queue limit "
                               f"{self.max_waiting}); retry later",
                               headers={"Retry-After": str(self.retry_after())})
        self.waiting += 1
        try:
            await asyncio.wait_for(sem.acquire(), timeout)
        except asyncio.TimeoutError:
            raise ApiError(504, "timeout", f"no analysis slot became free within the request "
                                           f"timeout of {timeout:g} s") from None
        finally:
            self.waiting -= 1
        self.active += 1

    def release(self, seconds: float | None = None) -> None:
        self.active -= 1
        if seconds is not None:
            self._service_time = 0.8 * self._service_time + 0.2 * seconds
        self._semaphore().release()

    def release_when_done(self, fut: "asyncio.Future[Any]", started: float) -> None:
        loop = asyncio.get_running_loop()
        fut.add_done_callback(lambda _f: self.release(loop.time() - started))


# ------------------------------------------------------------------------------ ASGI body guard

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

DRAIN_CAP = 256 * MB
"""An over-size body announced by ``Content-Length`` is read and dropped up to this many bytes
before the 413 goes out; past it the connection is simply closed after the answer."""


def upload_too_large(limit: int, got: int | None = None) -> ApiError:
    size = f"{got:,} bytes" if got is not None else "more bytes than that"
    return ApiError(413, "upload_too_large", f"the upload limit is {limit:,} bytes "
                                             f"({limit / MB:g} MiB); the request carries {size}")


class BodyLimit:
    """ASGI middleware refusing request bodies over ``limit`` + ``overhead`` bytes (see the
    module docstring); the error names ``limit``, the upload limit a client should know about."""

    def __init__(self, app: Callable[..., Awaitable[None]], limit: int, overhead: int = 0) -> None:
        self.app, self.limit, self.cap = app, int(limit), int(limit) + int(overhead)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        length = None
        for k, v in scope.get("headers", ()):
            if k == b"content-length":
                try:
                    length = int(v)
                except ValueError:
                    await _send_json(send, ApiError(400, "bad_request",
                                                    "Content-Length is not a number"))
                    return
        if length is not None and length > self.cap:
            drained = 0
            more = True
            while more and drained <= DRAIN_CAP:
                msg = await receive()
                if msg["type"] != "http.request":
                    return  # client went away
                drained += len(msg.get("body", b""))
                more = msg.get("more_body", False)
            await _send_json(send, upload_too_large(self.limit, length))
            return

        seen = 0

        async def counted() -> dict[str, Any]:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.cap:
                    raise upload_too_large(self.limit)
            return msg

        await self.app(scope, counted, send)


async def _send_json(send: Send, err: ApiError) -> None:
    body = json.dumps(err.body()).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in err.headers.items()]
    await send({"type": "http.response.start", "status": err.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
