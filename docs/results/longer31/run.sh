#!/bin/bash
# The pre-registered queue of docs/results/longer31/preregistration.md (round 31, learn31): per seed N (50-54) one
# base sweep, round 30's (drgrpo30) base command with --budget 240 instead of 60: a 1600-step SFT warm start
# (sft.loss psnr), then from it dense GRPO (arm A) and continued SFT (arm B), 240 CPU s each. Two seed processes at
# once at most (50, 51; then 52, 53 as slots free; then 54), every sweep at nice 19.
cd /work/wt/learn31
D=docs/results/longer31
mkdir -p $D/logs runs/l31
A="--budget 240 --budget-clock cpu --set sft.loss=psnr --set grpo.ema=0.999 --set grpo.emaWarmup=true --set eval.everyVersions=100"
ld() { cut -d' ' -f1-3 /proc/loadavg; }
one() {
  N=$1
  echo "seed $N base start $(date +%T) load $(ld)" >> $D/run-log.txt
  nice -n 19 /usr/bin/time -v node bin/recovery-grpo.mjs sweep --methods dense,sft $A --set grpo.beta=0.05 --sft-steps 1600 --seeds $((N+1)) --first-seed $N --out runs/l31/base > $D/logs/base-seed$N.out.txt 2> $D/logs/base-seed$N.err.txt
  rc=$?
  echo "seed $N base end $(date +%T) rc $rc load $(ld)" >> $D/run-log.txt
  W=runs/l31/base/warm-gaussian-seed$N-sft1600.safetensors
  [ -f "$W" ] && echo "seed $N warm start $W sha256 $(sha256sum $W | cut -c1-64)" >> $D/run-log.txt
}
echo "queue start $(date +%T) load $(ld) at $(git rev-parse --short HEAD)" >> $D/run-log.txt
one 50 & sleep 2
one 51 & sleep 2
wait -n; one 52 & sleep 2
wait -n; one 53 & sleep 2
wait -n; one 54 & sleep 2
wait
echo "queue done $(date +%T) load $(ld)" >> $D/run-log.txt
