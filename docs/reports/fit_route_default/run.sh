#!/bin/bash
# docs/reports/fit_route.md "Default preset": the route (100 m, 100 places, `default` synthetic preset, seed 0), the
# fit, and the replays. Bags: env1_t0..t5 and env2_t0 were generated with
#   hstnn-synth-route --out /work/data/default_route --preset default --envs env1,env2 (...)
# and the rest with the two commands below (same world: same preset and seed; new traversal indices).
set -e
D=/work/data
O=${OUT:-/work/fitdata/default3}
if [ "$1" = generate ]; then
  hstnn-synth-route --out $D/dr_env2 --preset default --envs env2 --traversals 3 --first-traversal 1 --quiet
  hstnn-synth-route --out $D/dr_env3 --preset default --envs env3 --traversals 4 --quiet
fi
# the fit: 3 environments x 4 traversals (per environment t0, t1 train, t2 validation, t3 test)
/usr/bin/time -v hstnn-fit-route --label route --quick --frontend-epochs 8 --out $O/out --bags \
  env1=$D/default_route/env1_t0 env1=$D/default_route/env1_t1 env1=$D/default_route/env1_t2 env1=$D/default_route/env1_t3 \
  env2=$D/default_route/env2_t0 env2=$D/dr_env2/env2_t1 env2=$D/dr_env2/env2_t2 env2=$D/dr_env2/env2_t3 \
  env3=$D/dr_env3/env3_t0 env3=$D/dr_env3/env3_t1 env3=$D/dr_env3/env3_t2 env3=$D/dr_env3/env3_t3 \
  > $O/fit.log 2>&1
# replays: held-out env1 traversals t4 and t5 (never used by the fit) and the test traversal t3 of every environment
mkdir -p $O/replays
rep() {  # bag bundle name [extra args]
  local bag=$1 model=$2 name=$3; shift 3
  hstnn-replay "$bag" --model $O/out/$model --out $O/replays/$name --no-progress "$@" > $O/replays/$name.txt 2>&1
}
for t in t4 t5; do
  for m in env1 default events_only; do
    rep $D/default_route/env1_$t $m env1_${t}_$m --environment env1 --route-filter  # prints raw and filtered
  done
done
for b in $D/default_route/env1_t3 $D/dr_env2/env2_t3 $D/dr_env3/env3_t3; do
  e=$(basename $b); e=${e%_t3}
  for m in $e default; do
    rep $b $m ${e}_t3_$m --environment $e --route-filter
  done
done
