"""The errors salface raises on purpose, all under one base class.

``except salface.errors.SalfaceError`` catches every failure salface explains itself (a bad
image, a missing or corrupt model file, a missing optional dependency, a bad dataset or cache),
while programming errors (``TypeError`` from a wrong call, say) stay distinct. Each class also
derives from the built-in exception it always was (``ValueError``, ``RuntimeError``,
``ImportError``), so older ``except`` clauses keep working.
"""

from __future__ import annotations


class SalfaceError(Exception):
    """Base class of every error salface raises deliberately."""


class ImageError(SalfaceError, ValueError):
    """An input that could not be turned into an RGB image. ``str()`` is ``"<source>: <reason>"``."""

    def __init__(self, source: str, reason: str) -> None:
        self.source = str(source)
        self.reason = reason
        super().__init__(f"{self.source}: {reason}")

    def __reduce__(self):  # keep it picklable (worker processes send errors back)
        return (type(self), (self.source, self.reason))


class ModelError(SalfaceError, RuntimeError):
    """A model file or manifest that cannot be used."""


class ChecksumError(ModelError):
    """A file's SHA-256 differs from the one it must have."""


class MissingModelError(ModelError):
    """A model file that is needed is not installed (and could not or may not be fetched)."""


class DependencyError(SalfaceError, ImportError):
    """An optional dependency is not installed; the message names the pip extra to install."""


__all__ = ["SalfaceError", "ImageError", "ModelError", "ChecksumError", "MissingModelError",
           "DependencyError"]
