#!/bin/bash
# The rest of the queue (round 30, drgrpo30): run.sh's nostd/nostdkl sweeps failed at once because `sweep --methods`
# refuses a single method ("give at least two methods to compare"); here they run with --methods dense,sft (as
# weight30's slw4 sweeps: the extra SFT arm is continued SFT from the same warm start, used by no hypothesis), and
# base:44 with them. At most two of this worktree's sweeps at once in total (run.sh's base 42 and 43 may still run):
# a worker starts a job only when fewer than 2 `node bin/recovery-grpo.mjs sweep ... runs/d30/...` processes exist.
cd /work/wt/learn30
D=docs/results/drgrpo30
mkdir -p runs/d30/jobs2
A="--budget 60 --budget-clock cpu --set sft.loss=psnr --set grpo.ema=0.999 --set grpo.emaWarmup=true --set eval.everyVersions=100"
ld() { cut -d' ' -f1-3 /proc/loadavg; }
W() { echo "runs/d30/base/warm-gaussian-seed$1-sft1600.safetensors"; }
FROM='runs/d30/base/warm-gaussian-seed{seed}-sft1600.safetensors'
JOBS="nostd:40 nostdkl:40 base:44 nostd:41 nostdkl:41 nostd:42 nostdkl:42 nostd:43 nostdkl:43 nostd:44 nostdkl:44"
running() { pgrep -fc '^node bin/recovery-grpo.mjs sweep .*runs/d30/'; }
ready() {
  case $1 in
    base) return 0 ;;
    *) [ -f runs/d30/jobs/base-$2.ok ] && [ -f $D/beta-nostdkl.txt ] ;;
  esac
}
take() {
  exec 9>runs/d30/jobs2/lock; flock 9
  # a job just taken whose sweep may not have started yet counts as running
  if [ -e runs/d30/jobs2/starting ]; then flock -u 9; return; fi
  left=0
  for j in $JOBS; do
    k=${j%:*}; n=${j#*:}
    [ -e runs/d30/jobs2/$k-$n.taken ] && continue
    [ -e runs/d30/jobs/base-$n.failed ] && continue
    left=1
    if [ "$(running)" -lt 2 ] && ready $k $n; then touch runs/d30/jobs2/$k-$n.taken runs/d30/jobs2/starting; echo "$k $n"; flock -u 9; return; fi
  done
  flock -u 9
  [ $left = 0 ] && echo END
}
job() {
  k=$1; N=$2
  echo "seed $N $k (run2.sh) start $(date +%T) load $(ld)" >> $D/run-log.txt
  case $k in
    base) nice -n 19 /usr/bin/time -v node bin/recovery-grpo.mjs sweep --methods dense,sft $A --set grpo.beta=0.05 --sft-steps 1600 --seeds $((N+1)) --first-seed $N --out runs/d30/base ;;
    nostd) nice -n 19 /usr/bin/time -v node bin/recovery-grpo.mjs sweep --methods dense,sft $A --set grpo.beta=0.05 --set grpo.stdNormalize=false --from "$FROM" --seeds $((N+1)) --first-seed $N --out runs/d30/nostd ;;
    nostdkl) nice -n 19 /usr/bin/time -v node bin/recovery-grpo.mjs sweep --methods dense,sft $A --set grpo.beta=$(cat $D/beta-nostdkl.txt) --set grpo.stdNormalize=false --from "$FROM" --seeds $((N+1)) --first-seed $N --out runs/d30/nostdkl ;;
  esac > $D/logs/$k-seed$N.out.txt 2> $D/logs/$k-seed$N.err.txt
  rc=$?
  echo "seed $N $k (run2.sh) end $(date +%T) rc $rc load $(ld)" >> $D/run-log.txt
  if [ $k = base ]; then
    if [ $rc = 0 ] && [ -f $(W $N) ]; then
      echo "seed $N warm start $(W $N) sha256 $(sha256sum $(W $N) | cut -c1-64)" >> $D/run-log.txt
      nice -n 19 node --import tsx $D/group_std.ts --warm $(W $N) --seed $N --steps 64 > $D/logs/group-std-seed$N.txt 2>&1
      echo "seed $N group_std rc $? $(date +%T): $(head -1 $D/logs/group-std-seed$N.txt)" >> $D/run-log.txt
      touch runs/d30/jobs/base-$N.ok
    else
      echo "seed $N base failed or no warm start: its nostd and nostdkl are not run" >> $D/run-log.txt
      touch runs/d30/jobs/base-$N.failed
    fi
  fi
}
worker() {
  while :; do
    j=$(take)
    [ "$j" = END ] && return
    if [ -z "$j" ]; then sleep 10; continue; fi
    ( sleep 8; rm -f runs/d30/jobs2/starting ) &
    job $j
  done
}
echo "queue run2.sh start $(date +%T) load $(ld) at $(git rev-parse --short HEAD)" >> $D/run-log.txt
worker & sleep 5
worker &
wait
echo "queue run2.sh done $(date +%T) load $(ld)" >> $D/run-log.txt
