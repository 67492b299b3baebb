"""The ``salface`` command line: one Typer app; each command group lives in its own module and
adds its commands with ``register(app)``. Commands are thin shells over the library."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="salface",
    help="Saliency-guided facial soft-biometrics: age group, gender and expression.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_GROUPS = ("analyze", "demo", "models", "saliency", "data", "train", "experiments", "robustness", "serve",
           "scale")

for _name in _GROUPS:
    importlib.import_module(f"{__name__}.{_name}").register(app)


def main() -> None:
    app()
