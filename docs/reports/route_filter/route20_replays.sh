#!/bin/bash
# The replays of docs/reports/route_filter.md (bundles re-shipped into /tmp/rf/out, see the report).
set -e
R=hstnn-replay
M=/tmp/rf/out
O=/tmp/rf/replays
for e in env1 env2 env3; do
  nice $R /work/fitdata/route20_heldout/${e}_t5 --model $M/$e --route-filter --out $O/${e}_t5_own_rf --no-progress > $O/${e}_t5_own_rf.txt 2>&1
  nice $R /work/fitdata/route20_heldout/${e}_t5 --model $M/$e --out $O/${e}_t5_own_raw --no-progress > $O/${e}_t5_own_raw.txt 2>&1
  nice $R /work/fitdata/route20_heldout/${e}_t5 --model $M/events_only --route-filter --out $O/${e}_t5_eo_rf --no-progress > $O/${e}_t5_eo_rf.txt 2>&1
  nice $R /work/fitdata/demo_route/${e}_t3 --model $M/$e --route-filter --environment $e --out $O/${e}_demo_own_rf --no-progress > $O/${e}_demo_own_rf.txt 2>&1
done
# another world for the false-accept rate (the demo route at seed 0 shares places with route20, see the report)
nice hstnn-synth-route --out /tmp/rf/other_route --preset demo --envs env1,env2,env3 --traversals 1 --seed 7 --quiet
for e in env1 env2 env3; do
  nice $R /tmp/rf/other_route/${e}_t0 --model $M/$e --route-filter --out $O/${e}_other_rf --no-progress > $O/${e}_other_rf.txt 2>&1
done
