"""Wrap a shipped (bundled) classifier as a training-run folder, so ``salface evaluate`` can score it
on a crop cache beside candidate runs (paired tests on the same images) and ``salface soup`` can
interpolate it with a model fine-tuned from it.

    python benchmarks/wrap_shipped_run.py default-expression --cache cache/crops/ferplus-96-gray \
        --preset default-expression --out runs/shipped-default-expression

The folder holds the bundled weights (checksum-verified; ``--weights`` takes an older copy, e.g. v3
of the expression model from git history:
``git show 8933410:src/salface/bundled/default-expression.safetensors > /tmp/v3.safetensors``), a ``config.json`` built for the cache
and preset like a training run's, plus a ``note`` saying what it is (a shipped ensemble, e.g.
``age-gender-ensemble``, keeps its own shipped config; ``--preset`` then only names the recipe
family), and a ``state.json``. Used for
issue 12's session-6 comparisons (``docs/benchmarks/robust/``). ``--member K`` wraps one member of
a shipped ensemble (session 13: the MobileNetV2 of ``age-gender-ensemble``, to pair it with a new
network):

    python benchmarks/wrap_shipped_run.py age-gender-ensemble --member 0 --cache cache/crops/utkface-96-rgb \
        --preset robust-age-gender-fair --out runs/shipped-ens-member0
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path


def main() -> None:
    from safetensors.numpy import load_file, save_file

    from salface.hub import bundled_model_path, load_manifest, sha256_file
    from salface.models import ClassifierConfig
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
    ap.add_argument("--member", type=int, help="wrap only this member (0, 1, ...) of a shipped ensemble: its "
                    "config and its tensors (stored under `members.K.`)")
    a = ap.parse_args()

    cc = open_crop_cache(a.cache)
    preset = get_preset(a.preset)
    shipped = load_manifest()["models"][a.name]["config"]
    if shipped.get("backbone") != "ensemble":
        if a.member is not None:
            raise SystemExit(f"--member: {a.name} is not an ensemble")
        config = classifier_config(preset, cc, name=a.out.name, saliency=preset.saliency, ratio=preset.ratio)
    else:
        # an ensemble's members, normalisations and input live in its shipped config, not in a
        # preset: take that config (less the fitted temperatures, which `evaluate` refits on val)
        extra = {k: v for k, v in shipped.get("extra", {}).items() if k != "temperature"}
        config = ClassifierConfig.from_dict({**shipped, "name": a.out.name, "extra": extra})
        if a.member is not None:
            config = ClassifierConfig.from_dict({**extra["members"][a.member], "name": a.out.name})
    weights = a.weights if a.weights else bundled_model_path(a.name)
    a.out.mkdir(parents=True, exist_ok=True)
    if a.member is None:
        shutil.copy(weights, a.out / "best.safetensors")
    else:
        prefix = f"members.{a.member}."
        save_file({k[len(prefix):]: v for k, v in load_file(str(weights)).items() if k.startswith(prefix)},
                  str(a.out / "best.safetensors"))
    epochs = preset.epochs
    atomic_write_json(a.out / "config.json", {
        "preset": preset.to_dict(), "classifier": config.to_dict(), "seed": 0, "cache": str(cc.root),
        "cache_key": cc.meta["key"], "note": f"not a training run: the shipped {a.name}"
        + (f" (member {a.member} only)" if a.member is not None else "") + f" (sha256 "
        f"{sha256_file(weights)}) wrapped so `salface evaluate` can score it beside candidates"})
    atomic_write_json(a.out / "state.json", {"epoch": epochs, "epochs": epochs,
                                             "best_epoch": epochs, "best_score": 0.0})
    print(f"{a.out}: {a.name} ({weights})")


if __name__ == "__main__":
    main()
