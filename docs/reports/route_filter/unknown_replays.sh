#!/bin/bash
# hstnn-replay of the route20 env bundles with the unknown-place detector (unknown_reship.py) on the own held-out
# traversal t5 and on the other route: TAR / FAR = share of decisions with known=True (decisions.csv).
set -e
M=/tmp/unk/bundles
O=/tmp/unk/replays
mkdir -p $O
for e in env1 env2 env3; do
  nice hstnn-replay /work/fitdata/route20_heldout/${e}_t5 --model $M/$e --route-filter --out $O/${e}_t5 --no-progress > $O/${e}_t5.txt 2>&1
  nice hstnn-replay /tmp/rf/other_route/${e}_t0 --model $M/$e --route-filter --out $O/${e}_other --no-progress > $O/${e}_other.txt 2>&1
done
for e in env1 env2 env3; do
  for s in t5 other; do
    python -c "import csv,sys; r=list(csv.DictReader(open('$O/${e}_$s/decisions.csv'))); k=[x['known']=='True' for x in r]; print('$e $s decisions', len(k), 'accepted %.3f' % (sum(k)/len(k)), 'top-1 %.3f' % (sum(x['place_id']==x['true_place'] for x in r)/len(r)))"
  done
done
