#!/bin/bash
# Seeds 35 and 36's slw4 sweeps again (their first try in run.sh stopped at once, rc 1: `sweep --from` with {seed}
# reads every seed's file from 0, not from --first-seed; see command.txt). Run after placeholders
# runs/w30/base/warm-gaussian-seed{0..34}-sft1600.safetensors (symlinks to seed 35's warm start) were made.
cd /work/wt/weight30
D=docs/results/scanlines-weight30
A="--budget 60 --budget-clock cpu --set sft.loss=psnr --set grpo.beta=0.05 --set grpo.ema=0.999 --set grpo.emaWarmup=true --set eval.everyVersions=100"
ld() { cut -d' ' -f1-3 /proc/loadavg; }
two() {
  N=$1
  mv $D/logs/slw4-seed$N.err.txt $D/logs/slw4-seed$N-try1.err.txt; mv $D/logs/slw4-seed$N.out.txt $D/logs/slw4-seed$N-try1.out.txt
  echo "seed $N slw4 (run2.sh) start $(date +%T) load $(ld)" >> $D/run-log.txt
  nice -n 19 /usr/bin/time -v node bin/recovery-grpo.mjs sweep --methods dense,sft $A --from 'runs/w30/base/warm-gaussian-seed{seed}-sft1600.safetensors' --set 'data.corruptions.weights={"scan_lines":4}' --seeds $((N+1)) --first-seed $N --out runs/w30/slw4 > $D/logs/slw4-seed$N.out.txt 2> $D/logs/slw4-seed$N.err.txt
  rc=$?
  echo "seed $N slw4 (run2.sh) end $(date +%T) rc $rc load $(ld)" >> $D/run-log.txt
}
two 35 & sleep 2
two 36 & sleep 2
wait
