#!/bin/bash
# Round 29 (scanlines29), fifth queue (written after queue4: with std normalisation off nothing moved, since the KL term, not scaled
# with the advantages, then dominates what Adam normalises): std normalisation off and on, both without KL and EMA. Same form as queue.sh. Usage: queue5.sh [WAIT_PID]
set -u
[ -n "${1:-}" ] && while kill -0 "$1" 2>/dev/null; do sleep 5; done
O=runs/sl29/out
p() { local S=$1 name=$2; shift 2
  local LOG=runs/sl29/queue5.log
  echo "s$S $name start $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)" >> $LOG
  nice -n 5 node --import tsx scripts/scanlines29-probe.ts --warm runs/sl29/warm-gaussian-seed$S-sft1600.safetensors --seed $S --out $O/s$S-$name.json "$@" >> $LOG 2>&1
  local rc=$?
  echo "s$S $name end $(date -u +%T) rc $rc load $(cut -d' ' -f1-3 /proc/loadavg)" >> $LOG; }
p 10 dense-all-nostd-nokl --arm dense --train-types all --set grpo.stdNormalize=false --set grpo.beta=0 --set grpo.ema=0 --set grpo.emaWarmup=false
p 15 dense-all-nokl --arm dense --train-types all --set grpo.beta=0 --set grpo.ema=0 --set grpo.emaWarmup=false
p 15 dense-all-nostd-nokl --arm dense --train-types all --set grpo.stdNormalize=false --set grpo.beta=0 --set grpo.ema=0 --set grpo.emaWarmup=false
echo "queue5 done $(date -u +%T)" >> runs/sl29/queue5.log
