#!/usr/bin/env bash
# The science sweeps of docs/reports/science.md on the cached features of the default-preset fit
# (docs/reports/fit_route_default/run.sh); 2 local Ray workers; resumable (re-run to continue).
# usage: run.sh FIT_OUT OUT [paper|small|strict|cross]
#   paper  (default) per environment, the ratio grid x 3 seeds x kinds at 500 + 500 (train_science.yaml)
#   small  the same at 100 + 100, ratios 0.5 and 0.9 (train_science_small.yaml)
#   strict front-ends trained on env1 only (env1_frontends.py; OUT/strict), the paper sweep on their env1 features
#   cross  hstnn-cross-condition over the paper sweeps (OUT/cross) and the strict one (OUT/strict/cross)
set -euo pipefail
fit=${1:?FIT_OUT}; out=${2:?OUT}; what=${3:-paper}
here=$(cd "$(dirname "$0")" && pwd)
sweep() {  # config features out
  hstnn-train --config "$here/$1" --features "$2" --out "$3" --ray --ray-workers 2
}
case $what in
  paper) for env in env1 env2 env3; do sweep train_science.yaml "$fit/.work/features/$env.safetensors" "$out/$env"; done ;;
  small) for env in env1 env2 env3; do
           sweep train_science_small.yaml "$fit/.work/features/$env.safetensors" "$out/small_$env"; done ;;
  strict) test -f "$out/strict/features/env1.safetensors" || FIT=$(dirname "$fit") python "$here/env1_frontends.py" "$out/strict"
          sweep train_science.yaml "$out/strict/features/env1.safetensors" "$out/strict/env1" ;;
  cross) hstnn-cross-condition --sweep env1="$out/env1" env2="$out/env2" env3="$out/env3" --out "$out/cross" \
           --features env1="$fit/.work/features/env1.safetensors" env2="$fit/.work/features/env2.safetensors" \
           env3="$fit/.work/features/env3.safetensors"
         hstnn-cross-condition --sweep env1="$out/strict/env1" --out "$out/strict/cross" \
           --features env1="$out/strict/features/env1.safetensors" env2="$out/strict/features/env2.safetensors" \
           env3="$out/strict/features/env3.safetensors" ;;
  *) echo "unknown part $what" >&2; exit 2 ;;
esac
