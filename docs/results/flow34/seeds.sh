#!/usr/bin/env bash
# exploratory (not pre-registered): the window at the end against the scalar default on more seeds, 120 steps each
# from each seed's own warm start; usage: seeds.sh N [N ...]
cd /work/wt/flow34
A=$(cat runs/f34/A.txt)
for N in "$@"; do
  echo "$(date -u +%T) start warm $N"
  nice -n 19 /usr/bin/time -f "%U user %S sys %e wall" node bin/recovery-grpo.mjs sweep --methods flow:sft $A --budget 1 --budget-clock cpu --seeds $((N+1)) --first-seed $N --out runs/f34/warm$N > runs/f34/warm$N.out 2>&1
  W=runs/f34/warm$N/warm-flow-seed$N-sft800.safetensors
  for arm in scalar wend; do
    extra=""; [ $arm = wend ] && extra="flow.sde.window.start=5"
    echo "$(date -u +%T) start $arm$N"
    nice -n 19 /usr/bin/time -f "%U user %S sys %e wall" node --import tsx docs/results/flow33/probe.ts $W 120 $arm$N --eval 8 --save-at 120 run.seed=$N $extra > runs/f34/p-$arm$N.txt 2>&1
  done
  echo "$(date -u +%T) end $N"
done
