#!/usr/bin/env bash
# The science sweep: per environment, the whole ratio grid x seeds x kinds on the cached features of the default-preset
# fit (docs/reports/fit_route_default/run.sh); 2 local Ray workers. Resumable: re-run to continue.
# usage: run.sh FIT_OUT OUT   (FIT_OUT: the fit's --out, holding .work/features/env{1,2,3}.safetensors)
set -euo pipefail
fit=${1:?FIT_OUT}; out=${2:?OUT}
here=$(cd "$(dirname "$0")" && pwd)
for env in env1 env2 env3; do
  hstnn-train --config "$here/train_science.yaml" --features "$fit/.work/features/$env.safetensors" \
    --out "$out/$env" --ray --ray-workers 2
done
