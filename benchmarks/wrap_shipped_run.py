"""Wrap a shipped (bundled) classifier as a training-run folder, so ``salface evaluate`` can score it
on a crop cache beside candidate runs (paired tests on the same images) and ``salface soup`` can
interpolate it with a model fine-tuned from it.

    python benchmarks/wrap_shipped_run.py default-expression --cache cache/crops/ferplus-96-gray \
        --preset default-expression --out runs/shipped-default-expression

The folder holds the bundled weights (checksum-verified; ``--weights`` takes an older copy, e.g. v3
of the expression model from git history:
``git show 8933410:src/salface/bundled/default-expression.safetensors > /tmp/v3.safetensors``), a ``config.json`` built for the cache
and preset like a training run's (plus a ``note`` saying what it is), and a ``state.json``. Used for
issue 12's session-6 comparisons (``docs/benchmarks/robust/``).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path


def main() -> None:
    from salface.hub import bundled_model_path, sha256_file
    from salface.training.cache import open_crop_cache
    from salface.training.presets import get_preset
    from salface.training.train import classifier_config
    from salface.utils import atomic_write_json

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("name", help="bundled model name, e.g. default-expression")
    ap.add_argument("--cache", type=Path, required=True, help="the crop cache the model was trained on")
    ap.add_argument("--preset", required=True, help="the preset it was trained with, e.g. default-age-gender")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--weights", type=Path, help="an older copy of the model's .safetensors (e.g. from "
                    "`git show COMMIT:src/salface/bundled/NAME.safetensors`) instead of the bundled one")
    a = ap.parse_args()

    cc = open_crop_cache(a.cache)
    preset = get_preset(a.preset)
    config = classifier_config(preset, cc, name=a.out.name, saliency=preset.saliency, ratio=preset.ratio)
    weights = a.weights if a.weights else bundled_model_path(a.name)
    a.out.mkdir(parents=True, exist_ok=True)
    shutil.copy(weights, a.out / "best.safetensors")
    epochs = preset.epochs
    atomic_write_json(a.out / "config.json", {
        "preset": preset.to_dict(), "classifier": config.to_dict(), "seed": 0, "cache": str(cc.root),
        "cache_key": cc.meta["key"], "note": f"not a training run: the shipped {a.name} (sha256 "
        f"{sha256_file(weights)}) wrapped so `salface evaluate` can score it beside candidates"})
    atomic_write_json(a.out / "state.json", {"epoch": epochs, "epochs": epochs,
                                             "best_epoch": epochs, "best_score": 0.0})
    print(f"{a.out}: {a.name} ({weights})")


if __name__ == "__main__":
    main()
