#!/usr/bin/env bash
# Issue 12: does the papers' saliency reweighting (ML-Net map, r = 0.3) make the classifier more
# robust, not only more accurate on clean crops? Trains one pair of runs that differ only in
# --saliency (mlnet at r = 0.3 vs none; same preset, cache, seed), evaluates both on the clean val and
# test crops (paired McNemar + bootstrap), ships both into a scratch bundle (never
# src/salface/bundled), runs `salface robustness` on the same seeded test faces for each, and compares
# the two reports face by face (`salface robustness-compare`, baseline = no saliency; and
# scripts/robustness_families.py: occlusion / framing / low resolution pooled over severities).
#
#   scripts/saliency_robustness.sh utkface            # default-age-gender, 6 epochs
#   scripts/saliency_robustness.sh ferplus --epochs 6 # default-expression, shortened to fit
#
# Extra arguments go to both `salface train` calls. Every step is resumable: a finished run
# (best.safetensors + command.txt) is not retrained and `salface robustness` resumes from --work.
# The machine is shared: before each training it waits (polling every 30 s) until no other
# `salface train` and no runs/queue*.sh is running, and trains with nice -n 5 on 2 threads; the other
# steps run with nice -n 10. The body is one function, parsed whole before it runs, so editing
# this file does not disturb a run in progress.
set -euo pipefail

main() {
  cd "$(dirname "$0")/.." && cd "$(pwd -P)"

  dataset=${1:?usage: scripts/saliency_robustness.sh utkface|ferplus [train options]}
  shift
  case "$dataset" in
    utkface) preset=default-age-gender; cache=cache/crops/utkface-96-rgb; tag=sal-pair ;;
    ferplus) preset=default-expression; cache=cache/crops/ferplus-96-gray; tag=sal-pair-ferplus ;;
    *) echo "unknown dataset '$dataset' (utkface or ferplus)" >&2; exit 2 ;;
  esac
  [ -f "$cache/meta.json" ] || { echo "crop cache $cache not found (salface cache crops)" >&2; exit 2; }

  . .venv/bin/activate
  export OMP_WAIT_POLICY=PASSIVE TORCH_HOME=$PWD/cache/torch
  # torchvision's ImageNet MobileNetV2 file, found offline by a link to ../shared (docs/training.md)
  local hub=$TORCH_HOME/hub/checkpoints imagenet=../shared/weights/imagenet/mobilenet_v2-b0353104.pth
  if [ ! -e "$hub/${imagenet##*/}" ] && [ -f "$imagenet" ]; then
    mkdir -p "$hub" && ln -s "$(realpath "$imagenet")" "$hub/${imagenet##*/}"
  fi
  docs=docs/benchmarks/robustness/saliency
  bundle=cache/sal-bundle
  log() { echo "[$(date -u +%H:%M:%S)] $*"; }

  wait_for_cpu() {
    while pgrep -f "salface train" >/dev/null || pgrep -f "runs/queue[0-9]*\.sh" >/dev/null; do
      sleep 30
    done
  }

  train_arm() {  # train_arm RUN_NAME SALIENCY_ARGS...
    local run=runs/$1; shift
    if [ -f "$run/best.safetensors" ] && [ -f "$run/command.txt" ]; then
      log "$run already trained"; return
    fi
    wait_for_cpu
    log "training $run"
    nice -n 5 salface train --preset "$preset" --cache "$cache" "$@" --seed 0 --threads 2 \
      --out "$run" "${train_args[@]}" > "$run.log" 2>&1
    log "trained $run: $(tail -n 1 "$run.log")"
  }

  train_args=("$@")
  log "commit $(git rev-parse --short HEAD); $dataset: $preset on $cache ${train_args[*]}"
  train_arm "$tag-mlnet03" --saliency mlnet --ratio 0.3
  train_arm "$tag-none" --saliency none

  # Clean crops: no saliency first, so every paired Δ reads "with saliency − without". The
  # side-by-side report's name does not carry the split, so val goes to its own folder.
  log "evaluate val, test"
  nice -n 10 salface evaluate "runs/$tag-none" "runs/$tag-mlnet03" --split val --threads 2 --out "$docs/val"
  nice -n 10 salface evaluate "runs/$tag-none" "runs/$tag-mlnet03" --split test --threads 2 --out "$docs"

  [ -d "$bundle" ] || cp -r src/salface/bundled "$bundle"
  export SALFACE_BUNDLED_DIR=$PWD/$bundle
  for arm in none mlnet03; do
    name=$tag-$arm
    nice -n 10 salface ship "runs/$name" --name "$name" --report "$docs/val/${name}_val.json" \
      --data "experiment (issue 12, saliency robustness pair; not for release)"
    log "robustness $name"
    nice -n 10 salface robustness --dataset "$dataset" --data "../shared/data/$dataset" --limit 600 \
      --seed 0 --backend onnx --model "$name" --out "$docs/$arm" --work "cache/robustness/$name"
  done
  nice -n 10 salface robustness-compare "$docs/none/$dataset.json" "$docs/mlnet03/$dataset.json" \
    --out "$docs/compare_$dataset"
  nice -n 10 python scripts/robustness_families.py "$docs/none/$dataset.json" "$docs/mlnet03/$dataset.json" \
    --out "$docs/families_$dataset"
  log "done: $docs/compare_$dataset.md, $docs/families_$dataset.md"
}

main "$@"
exit
