#!/usr/bin/env bash
# Resolution mirror (issue 12, session 18): docs/benchmarks/resolution/README.md.
# Builds the caches, trains the FER-resolution network, scores it and the shipped default-age-gender
# on every val arm, and pairs the reports (stages build, train, evaluate); stage fer does the same
# on FER+ itself at half its resolution. Run from the repository root with ../shared beside it.
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
  python $R maps cache/crops/utk-val-sharp cache/crops/utk-val-cap48 cache/crops/utk-val-cap56 cache/crops/utk-val-cap62 --out $D/map_agreement.json
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
if [[ $stage == all || $stage == fer ]]; then
  # the same on the expression task: FER+ at half its resolution for training, its own pictures as
  # the "sharp" faces (twice the training resolution), capped at the top of the training sides
  F=cache/crops/ferplus-96-gray-level      # docs/benchmarks/align/README.md, session 16 (any FER+ 96-px cache does)
  python $R build --cache $F --sides $S --scale 0.5 --splits train,val --out cache/crops/fer-half
  python $R build --cache $F --sides $S --scale 0.5 --splits val --out cache/crops/fer-val-half
  python $R build --cache $F --splits val --out cache/crops/fer-val-native
  python $R build --cache $F --side 31 --splits val --out cache/crops/fer-val-cap31
  for c in fer-half fer-val-half fer-val-native fer-val-cap31; do salface cache saliency cache/crops/$c --saliency mlnet; done
  python $R build --cache $F --side 31 --splits val --out cache/crops/fer-val-cap31-sm --maps-from cache/crops/fer-val-native
  salface train --preset default-expression --epochs 4 --cache cache/crops/fer-half --out runs/fer-half-e4 --threads 2 --seed 0
  for c in fer-val-half fer-val-native fer-val-cap31 fer-val-cap31-sm; do
    salface evaluate runs/fer-half-e4 --split val --tta --no-calibrate --cache cache/crops/$c --out cache/resolution/fer-half-e4_on_$c --threads "${THREADS:-2}"
  done
  python scripts/framing_proxy.py compare cache/resolution/fer-half-e4_on_{fer-val-half,fer-val-native,fer-val-cap31,fer-val-cap31-sm}/fer-half-e4_val.json --out $D/compare_fer-half-e4.json
fi
