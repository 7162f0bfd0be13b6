#!/bin/bash
# Round 29 (scanlines29), fourth queue (written after queue3's first two results): per-group std normalisation off (Dr. GRPO;
# with Adam a common scale of the advantages does not change the step, only the groups' relative weights) and the
# scan_lines-weight-4 probe on seed 15. Same form as queue.sh. Usage: queue4.sh [WAIT_PID]
set -u
[ -n "${1:-}" ] && while kill -0 "$1" 2>/dev/null; do sleep 5; done
O=runs/sl29/out
p() { local S=$1 name=$2; shift 2
  local LOG=runs/sl29/queue4.log
  echo "s$S $name start $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)" >> $LOG
  nice -n 5 node --import tsx scripts/scanlines29-probe.ts --warm runs/sl29/warm-gaussian-seed$S-sft1600.safetensors --seed $S --out $O/s$S-$name.json "$@" >> $LOG 2>&1
  local rc=$?
  echo "s$S $name end $(date -u +%T) rc $rc load $(cut -d' ' -f1-3 /proc/loadavg)" >> $LOG; }
p 10 dense-all-nostd --arm dense --train-types all --set grpo.stdNormalize=false
p 15 dense-all-nostd --arm dense --train-types all --set grpo.stdNormalize=false
p 15 dense-all-slw4 --arm dense --train-types all --set 'data.corruptions.weights={"scan_lines":4}'
echo "queue4 done $(date -u +%T)" >> runs/sl29/queue4.log
