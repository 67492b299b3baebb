"""Deprecated: the model store moved to :mod:`salface.hub` (it serves the detectors and the
saliency models as well as the classifiers). This alias goes away in the next release."""

from __future__ import annotations

import warnings

from ..hub import *  # noqa: F401,F403
from ..hub import __all__  # noqa: F401

warnings.warn("salface.models.weights is deprecated; import salface.hub instead",
              DeprecationWarning, stacklevel=2)
