#!/usr/bin/env bash
# Round 35's confirmatory queue (prereg.md): two chains of seeds.sh at once (at most two runs at a time, nice 19), the
# load average every 60 s into docs/results/flow35/load.txt. Run from the checkout's root:
#   bash docs/results/flow35/run.sh > runs/f35/run-log.txt 2>&1
set -u
D=docs/results/flow35
mkdir -p runs/f35
( while :; do echo "$(date -u +%T) $(cut -d' ' -f1-3 /proc/loadavg)"; sleep 60; done ) >> $D/load.txt &
LOAD=$!
echo "$(date -u +%T) queue starts at $(git rev-parse --short HEAD); load logger $LOAD"
bash $D/seeds.sh 1 > runs/f35/chain1.log 2>&1 &
C1=$!
bash $D/seeds.sh 2 > runs/f35/chain2.log 2>&1 &
C2=$!
wait $C1 $C2
kill $LOAD
echo "$(date -u +%T) queue ends"
