#!/usr/bin/env bash
# Session 17: level only faces whose eye line tilts 10° or more (config.align_min_tilt), against the
# upright crop, end to end through `salface robustness` (docs/benchmarks/align/README.md, "Session 17").
#
#   bash benchmarks/align_min_tilt.sh val|test|blazeface-val|blazeface-test [OUT=cache/robust17]
#
# Needs ../shared (UTKFace, FER+), the split files (`salface splits utkface|ferplus --shared ../shared
# --out cache/splits`) and, except for the blazeface stages, YuNet (`salface fetch yunet --from
# ../shared/weights/yunet/face_detection_yunet_2023mar.onnx`). Both arms are scratch copies of the
# installed bundle (same weights): "upright" with the three classifiers' align off (the shipped crop
# before session 17), "dz10" levelling from 10° of tilt (shipped since session 17). About 50 min per
# stage on 2 cores. Session 17's YuNet upright arms were session 15's runs of the shipped models
# (cache/robust15/*-default, *-base: the same weights and the same upright crop code).
set -euo pipefail
STAGE=${1:?val, test, blazeface-val or blazeface-test}
OUT=${2:-cache/robust17}
mkdir -p "$OUT"
export OMP_WAIT_POLICY=PASSIVE
BUNDLED=$(python -c "from salface.hub import bundled_dir; print(bundled_dir())")
for arm in upright dz10; do
  rm -rf "$OUT/bundle-$arm" && cp -r "$BUNDLED" "$OUT/bundle-$arm"
  for m in age-gender-ensemble default-age-gender default-expression; do
    if [ $arm = dz10 ]; then
      SALFACE_BUNDLED_DIR="$OUT/bundle-$arm" salface models set-align $m on --min-tilt 10 --reason "session 17 candidate"
    else
      SALFACE_BUNDLED_DIR="$OUT/bundle-$arm" salface models set-align $m off --reason "the upright crop"
    fi
  done
done
R="salface robustness --seed 0 --backend onnx --model default"
U="--dataset utkface --data ../shared/data/utkface --split-file cache/splits/utkface.jsonl"
F="--dataset ferplus --data ../shared/data/ferplus --split-file cache/splits/ferplus.jsonl"
case $STAGE in
  val|test) split=$STAGE; det=""; tag="" ;;
  blazeface-val|blazeface-test) split=${STAGE#blazeface-}; det="--detector blazeface"; tag="bf-" ;;
  *) echo "unknown stage $STAGE" >&2; exit 2 ;;
esac
for arm in upright dz10; do
  export SALFACE_BUNDLED_DIR="$OUT/bundle-$arm"
  # every face of the split: clean and in-plane rotation 10° / 20° / 30°
  $R $U --split $split --limit 0 --conditions rotation $det --out "$OUT/${tag}full-$split-utkface-$arm" --work "$OUT/work-${tag}full-$split-utkface-$arm"
  $R $F --split $split --limit 0 --conditions rotation $det --out "$OUT/${tag}full-$split-ferplus-$arm" --work "$OUT/work-${tag}full-$split-ferplus-$arm"
  # the seeded 600-face subset: all 20 conditions x 3 severities
  $R $U --split $split --limit 600 $det --out "$OUT/${tag}$split-utkface-$arm" --work "$OUT/work-${tag}$split-utkface-$arm"
  $R $F --split $split --limit 600 $det --out "$OUT/${tag}$split-ferplus-$arm" --work "$OUT/work-${tag}$split-ferplus-$arm"
done
unset SALFACE_BUNDLED_DIR
for ds in utkface ferplus; do
  salface robustness-compare "$OUT/${tag}full-$split-$ds-upright/$ds.json" "$OUT/${tag}full-$split-$ds-dz10/$ds.json" --out "$OUT/cmp-${tag}full-$split-$ds"
  salface robustness-compare "$OUT/${tag}$split-$ds-upright/$ds.json" "$OUT/${tag}$split-$ds-dz10/$ds.json" --out "$OUT/cmp-${tag}$split-$ds"
done
