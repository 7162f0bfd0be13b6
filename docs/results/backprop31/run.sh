#!/bin/bash
# The pre-registered queue of docs/results/backprop31/preregistration.md (round 31, bp31): per seed N (50-54) one
# sweep with learn31's flags (docs/results/longer31/command.txt) and --methods backprop: the 1600-step SFT warm start
# (sft.loss psnr, trained again: learn31's files are gone), then from it direct reward backprop (arm C) for 240 CPU s.
# Two seed processes at once at most (50, 51; then 52, 53 as slots free; then 54), every sweep at nice 19.
cd /work/wt/bp31
D=docs/results/backprop31
mkdir -p $D/logs runs/bp31
A="--budget 240 --budget-clock cpu --set sft.loss=psnr --set grpo.ema=0.999 --set grpo.emaWarmup=true --set eval.everyVersions=100"
ld() { cut -d' ' -f1-3 /proc/loadavg; }
one() {
  N=$1
  echo "seed $N backprop start $(date +%T) load $(ld)" >> $D/run-log.txt
  nice -n 19 /usr/bin/time -v node bin/recovery-grpo.mjs sweep --methods backprop $A --set grpo.beta=0.05 --sft-steps 1600 --seeds $((N+1)) --first-seed $N --out runs/bp31/base > $D/logs/bp-seed$N.out.txt 2> $D/logs/bp-seed$N.err.txt
  rc=$?
  echo "seed $N backprop end $(date +%T) rc $rc load $(ld)" >> $D/run-log.txt
  W=runs/bp31/base/warm-gaussian-seed$N-sft1600.safetensors
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
