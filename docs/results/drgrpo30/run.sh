#!/bin/bash
# The pre-registered queue of docs/results/drgrpo30/preregistration.md (round 30, learn30). Two worker processes
# take jobs in the listed order, each the first whose inputs exist; every sweep at nice 19, CPU-time budgets.
# Per seed N (40-44): base (1600-step warm start + dense + sft, weight30's command), then from base's warm start
# nostd (dense, grpo.stdNormalize=false, beta 0.05) and nostdkl (dense, stdNormalize=false, beta = 0.05 x s,
# s from group_std.ts on seed 40's warm start, written to beta-nostdkl.txt once seed 40's base ends; if seed 40's
# base fails, from the next seed whose base succeeds). DRY=1: a test of the queue itself (sleep instead of sweeps).
cd /work/wt/learn30
D=docs/results/drgrpo30
mkdir -p $D/logs runs/d30/jobs
A="--budget 60 --budget-clock cpu --set sft.loss=psnr --set grpo.ema=0.999 --set grpo.emaWarmup=true --set eval.everyVersions=100"
ld() { cut -d' ' -f1-3 /proc/loadavg; }
W() { echo "runs/d30/base/warm-gaussian-seed$1-sft1600.safetensors"; }
FROM='runs/d30/base/warm-gaussian-seed{seed}-sft1600.safetensors'
JOBS="base:40 base:41 nostd:40 nostdkl:40 nostd:41 nostdkl:41 base:42 base:43 nostd:42 nostdkl:42 nostd:43 nostdkl:43 base:44 nostd:44 nostdkl:44"
ready() { # $1 kind $2 seed
  case $1 in
    base) return 0 ;;
    nostd) [ -f runs/d30/jobs/base-$2.ok ] ;;
    nostdkl) [ -f runs/d30/jobs/base-$2.ok ] && [ -f $D/beta-nostdkl.txt ] ;;
  esac
}
take() { # prints the next ready job and marks it taken (under a lock); "" when none ready; "END" when none left
  exec 9>runs/d30/jobs/lock; flock 9
  left=0
  for j in $JOBS; do
    k=${j%:*}; n=${j#*:}
    [ -e runs/d30/jobs/$k-$n.taken ] && continue
    left=1
    if ready $k $n; then touch runs/d30/jobs/$k-$n.taken; echo "$k $n"; flock -u 9; return; fi
  done
  flock -u 9
  [ $left = 0 ] && echo END
}
job() { # $1 kind $2 seed
  k=$1; N=$2
  echo "seed $N $k start $(date +%T) load $(ld)" >> $D/run-log.txt
  if [ -n "$DRY" ]; then sleep 1; [ $k = base ] && mkdir -p runs/d30/base && echo x > $(W $N); echo "dry $k $N" > $D/logs/$k-seed$N.out.txt; rc=0; else
  case $k in
    base) nice -n 19 /usr/bin/time -v node bin/recovery-grpo.mjs sweep --methods dense,sft $A --set grpo.beta=0.05 --sft-steps 1600 --seeds $((N+1)) --first-seed $N --out runs/d30/base ;;
    nostd) nice -n 19 /usr/bin/time -v node bin/recovery-grpo.mjs sweep --methods dense $A --set grpo.beta=0.05 --set grpo.stdNormalize=false --from "$FROM" --seeds $((N+1)) --first-seed $N --out runs/d30/nostd ;;
    nostdkl) nice -n 19 /usr/bin/time -v node bin/recovery-grpo.mjs sweep --methods dense $A --set grpo.beta=$(cat $D/beta-nostdkl.txt) --set grpo.stdNormalize=false --from "$FROM" --seeds $((N+1)) --first-seed $N --out runs/d30/nostdkl ;;
  esac > $D/logs/$k-seed$N.out.txt 2> $D/logs/$k-seed$N.err.txt
  rc=$?
  fi
  echo "seed $N $k end $(date +%T) rc $rc load $(ld)" >> $D/run-log.txt
  if [ $k = base ]; then
    if [ $rc = 0 ] && [ -f $(W $N) ]; then
      echo "seed $N warm start $(W $N) sha256 $(sha256sum $(W $N) | cut -c1-64)" >> $D/run-log.txt
      [ -n "$DRY" ] && echo "seed $N warm init: 256 groups of 8; group reward std mean 0.00146 median" > $D/logs/group-std-seed$N.txt || nice -n 19 node --import tsx $D/group_std.ts --warm $(W $N) --seed $N --steps 64 > $D/logs/group-std-seed$N.txt 2>&1
      echo "seed $N group_std rc $? $(date +%T): $(head -1 $D/logs/group-std-seed$N.txt)" >> $D/run-log.txt
      if [ ! -f $D/beta-nostdkl.txt ] && { [ $N = 40 ] || [ -f runs/d30/jobs/base-40.failed ]; }; then
        # the pre-registered rule: beta = 0.05 x (mean group std), 2 significant digits
        python3 -c "import re,sys; s=float(re.search(r'std mean ([0-9.]+)', open(sys.argv[1]).read()).group(1)); print(float('%.2g' % (0.05 * s)))" $D/logs/group-std-seed40.txt > $D/beta-nostdkl.tmp && mv $D/beta-nostdkl.tmp $D/beta-nostdkl.txt
        echo "beta for nostdkl: $(cat $D/beta-nostdkl.txt) ($(date +%T))" >> $D/run-log.txt
      fi
      touch runs/d30/jobs/base-$N.ok
    else
      echo "seed $N base failed or no warm start: its nostd and nostdkl are not run" >> $D/run-log.txt
      touch runs/d30/jobs/base-$N.failed runs/d30/jobs/nostd-$N.taken runs/d30/jobs/nostdkl-$N.taken
    fi
  fi
}
worker() {
  while :; do
    j=$(take)
    [ "$j" = END ] && return
    if [ -z "$j" ]; then
      # nothing ready: wait (seed 40's beta not written yet), unless a base failed and nothing can become ready
      sleep 10; continue
    fi
    job $j
  done
}
echo "queue start $(date +%T) load $(ld) at $(git rev-parse --short HEAD)" >> $D/run-log.txt
worker & sleep 2
worker &
wait
echo "queue done $(date +%T) load $(ld)" >> $D/run-log.txt
