"""Deprecated: moved to :mod:`salface.evaluation.stats`; this alias goes in the next release."""

from __future__ import annotations

import warnings

from .evaluation.stats import *  # noqa: F401,F403
from .evaluation.stats import __all__  # noqa: F401

warnings.warn("salface.stats moved to salface.evaluation.stats; the old name goes in the next release",
              DeprecationWarning, stacklevel=2)
