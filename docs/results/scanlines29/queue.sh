#!/bin/bash
# Round 29 (scanlines29): the measurements, one at a time at nice 5 (one core), each line logged with its start,
# end, exit status and load average. Usage: docs/results/scanlines29/queue.sh SEED [WAIT_PID]  (from the worktree root)
set -u
S=$1
[ -n "${2:-}" ] && while kill -0 "$2" 2>/dev/null; do sleep 5; done
W=runs/sl29/warm-gaussian-seed$S-sft1600.safetensors
O=runs/sl29/out
LOG=runs/sl29/queue-s$S.log
LS3=model.logStd=-5.809142990314028   # sigma 0.003
p() { local name=$1; shift
  echo "$name start $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)" >> $LOG
  nice -n 5 node --import tsx scripts/scanlines29-probe.ts --warm $W --seed $S --out $O/s$S-$name.json "$@" >> $LOG 2>&1
  local rc=$?
  echo "$name end $(date -u +%T) rc $rc load $(cut -d' ' -f1-3 /proc/loadavg)" >> $LOG; }
p none --arm none
p none-sigma003 --arm none --set $LS3
p dense-all --arm dense --train-types all
p dense-sl --arm dense --train-types scan_lines
p scalar-sl --arm scalar --train-types scan_lines
p dense-sl-nokl --arm dense --train-types scan_lines --set grpo.beta=0 --set grpo.ema=0 --set grpo.emaWarmup=false
p dense-sl-sigma003 --arm dense --train-types scan_lines --set $LS3
p sft-sl --arm sft --train-types scan_lines
p backprop-sl --arm backprop --train-types scan_lines
echo "queue done $(date -u +%T)" >> $LOG
