"""Deprecated: moved to :mod:`salface.training.cache` (training code lives in ``salface.training``).
This alias is the same module object and goes away in the next release."""

import importlib
import sys
import warnings

warnings.warn("salface.cache is deprecated; import salface.training.cache instead",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = importlib.import_module("salface.training.cache")
