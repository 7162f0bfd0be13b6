#!/bin/bash
# The pre-registered test's queue (docs/results/method-compare-warm28/preregistration.md): seeds 25, 26, 27 at once,
# 28 and 29 as slots free; at most three seed processes at once. $1 = the chosen --sft-steps.
cd /work/wt/warm28
L=$1
one() {
  N=$1
  echo "seed $N start $(date +%T) load $(cut -d' ' -f1-3 /proc/loadavg)" >> runs/w28/run-log.txt
  nice -n 5 /usr/bin/time -v node bin/recovery-grpo.mjs sweep --methods dense,sft --seeds $((N+1)) --first-seed $N --budget 60 --budget-clock cpu --sft-steps $L --set sft.loss=psnr --set grpo.beta=0.05 --set grpo.ema=0.999 --set grpo.emaWarmup=true --set eval.everyVersions=100 --out runs/w28 > runs/w28/seed$N.out 2> runs/w28/seed$N.err
  echo "seed $N end $(date +%T) rc $? load $(cut -d' ' -f1-3 /proc/loadavg)" >> runs/w28/run-log.txt
}
one 25 & sleep 2
one 26 & sleep 2
one 27 & sleep 2
wait -n; one 28 & sleep 2
wait -n; one 29 & sleep 2
wait
echo "queue done $(date +%T)" >> runs/w28/run-log.txt
