#!/bin/bash
# The same fit as run.sh with the aligned depth as a 4th front-end channel (--depth), for "what depth adds" (issue 16):
# same bags, splits and recipe; only the CNN's input differs (the SCNN sees the same event frames).
set -e
D=/work/data
O=${OUT:-/work/fitdata/default3_depth}
mkdir -p $O
/usr/bin/time -v hstnn-fit-route --label route --quick --frontend-epochs 8 --depth --out $O/out --bags \
  env1=$D/default_route/env1_t0 env1=$D/default_route/env1_t1 env1=$D/default_route/env1_t2 env1=$D/default_route/env1_t3 \
  env2=$D/default_route/env2_t0 env2=$D/dr_env2/env2_t1 env2=$D/dr_env2/env2_t2 env2=$D/dr_env2/env2_t3 \
  env3=$D/dr_env3/env3_t0 env3=$D/dr_env3/env3_t1 env3=$D/dr_env3/env3_t2 env3=$D/dr_env3/env3_t3 \
  --off-route env1=$D/other7/env1_t0 > $O/fit.log 2>&1
