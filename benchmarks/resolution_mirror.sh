#!/usr/bin/env bash
# Resolution mirror (issue 12, session 18): docs/benchmarks/resolution/README.md.
# Builds the caches, trains the FER-resolution network, scores it and the shipped default-age-gender
# on every val arm, and pairs the reports. Run from the repository root with ../shared beside it.
set -euo pipefail
R=benchmarks/resolution_mirror.py
D=docs/benchmarks/resolution
SRC=cache/crops/utkface-96-rgb          # docs/training.md's UTKFace 96-px cache
S=$D/fer_crop_sides.json
stage=${1:-all}
if [[ $stage == all || $stage == build ]]; then
  python $R measure --dataset ferplus --data ../shared/data/ferplus --n 4000 --out $S
  python $R measure --dataset utkface --data ../shared/data/utkface --n 2000 --out $D/utk_crop_sides.json
  python $R build --cache $SRC --sides $S --splits train,val --out cache/crops/utk-ferres
  python $R build --cache $SRC --sides $S --splits val --out cache/crops/utk-val-ferres
  python $R build --cache $SRC --splits val --out cache/crops/utk-val-sharp
  for c in utk-ferres utk-val-ferres utk-val-sharp; do salface cache saliency cache/crops/$c --saliency mlnet; done
  for s in 48 56 62; do
    python $R build --cache $SRC --side $s --splits val --out cache/crops/utk-val-cap$s
    salface cache saliency cache/crops/utk-val-cap$s --saliency mlnet
    python $R build --cache $SRC --side $s --splits val --out cache/crops/utk-val-cap$s-sm --maps-from cache/crops/utk-val-sharp
  done
fi
if [[ $stage == all || $stage == train ]]; then
  salface train --preset default-age-gender --cache cache/crops/utk-ferres --out runs/ferres-m --threads 2 --seed 0
  python benchmarks/wrap_shipped_run.py default-age-gender --cache $SRC --preset default-age-gender --out runs/shipped-default-age-gender
fi
if [[ $stage == all || $stage == evaluate ]]; then
  caps="utk-val-cap48 utk-val-cap56 utk-val-cap62 utk-val-cap48-sm utk-val-cap56-sm utk-val-cap62-sm"
  for run in ferres-m shipped-default-age-gender; do
    # each network's own resolution first: the paired deltas are against it
    if [[ $run == ferres-m ]]; then order="utk-val-ferres utk-val-sharp $caps"; else order="utk-val-sharp utk-val-ferres $caps"; fi
    arms=()
    for c in $order; do
      [[ -f cache/resolution/${run}_on_$c/${run}_val.json ]] || \
        salface evaluate runs/$run --split val --no-tta --no-calibrate --cache cache/crops/$c --out cache/resolution/${run}_on_$c --threads "${THREADS:-2}"
      arms+=(cache/resolution/${run}_on_$c/${run}_val.json)
    done
    python scripts/framing_proxy.py compare "${arms[@]}" --out $D/compare_$run.json
  done
fi
