#!/bin/bash
# The pre-registered test's queue (docs/results/scanlines-weight30/preregistration.md), round 29 (weight30).
# Per seed: base sweep (warm start + dense + sft), then slw4 sweep from base's warm start. Two seeds at once
# (35, 36; then 37, 38 as slots free; then 39), nice -n 19 (the coordinator's CI runs beside).
cd /work/wt/weight30
D=docs/results/scanlines-weight30
A="--budget 60 --budget-clock cpu --set sft.loss=psnr --set grpo.beta=0.05 --set grpo.ema=0.999 --set grpo.emaWarmup=true --set eval.everyVersions=100"
ld() { cut -d' ' -f1-3 /proc/loadavg; }
one() {
  N=$1
  echo "seed $N base start $(date +%T) load $(ld)" >> $D/run-log.txt
  nice -n 19 /usr/bin/time -v node bin/recovery-grpo.mjs sweep --methods dense,sft $A --sft-steps 1600 --seeds $((N+1)) --first-seed $N --out runs/w30/base > $D/logs/base-seed$N.out.txt 2> $D/logs/base-seed$N.err.txt
  rc=$?
  echo "seed $N base end $(date +%T) rc $rc load $(ld)" >> $D/run-log.txt
  W=runs/w30/base/warm-gaussian-seed$N-sft1600.safetensors
  if [ ! -f "$W" ]; then echo "seed $N: $W missing, slw4 not started $(date +%T)" >> $D/run-log.txt; ls runs/w30/base >> $D/run-log.txt; return; fi
  echo "seed $N slw4 start $(date +%T) load $(ld) from $W sha256 $(sha256sum $W | cut -c1-64)" >> $D/run-log.txt
  nice -n 19 /usr/bin/time -v node bin/recovery-grpo.mjs sweep --methods dense,sft $A --from 'runs/w30/base/warm-gaussian-seed{seed}-sft1600.safetensors' --set 'data.corruptions.weights={"scan_lines":4}' --seeds $((N+1)) --first-seed $N --out runs/w30/slw4 > $D/logs/slw4-seed$N.out.txt 2> $D/logs/slw4-seed$N.err.txt
  rc=$?
  echo "seed $N slw4 end $(date +%T) rc $rc load $(ld)" >> $D/run-log.txt
}
one 35 & sleep 2
one 36 & sleep 2
wait -n; one 37 & sleep 2
wait -n; one 38 & sleep 2
wait -n; one 39 & sleep 2
wait
echo "queue done $(date +%T)" >> $D/run-log.txt
