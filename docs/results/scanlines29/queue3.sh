#!/bin/bash
# Round 29 (scanlines29), third queue (written while queue2 ran, after seed 10's scan_lines-only arms): direct reward
# backprop on every type (the reward's exact gradient: does it trade scan_lines off too?), and, as a probe of a fix,
# dense GRPO on every type with scan_lines drawn 4 times as often. Same form as queue.sh. Usage: queue3.sh [WAIT_PID]
set -u
[ -n "${1:-}" ] && while kill -0 "$1" 2>/dev/null; do sleep 5; done
O=runs/sl29/out
p() { local S=$1 name=$2; shift 2
  local LOG=runs/sl29/queue3.log
  echo "s$S $name start $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)" >> $LOG
  nice -n 5 node --import tsx scripts/scanlines29-probe.ts --warm runs/sl29/warm-gaussian-seed$S-sft1600.safetensors --seed $S --out $O/s$S-$name.json "$@" >> $LOG 2>&1
  local rc=$?
  echo "s$S $name end $(date -u +%T) rc $rc load $(cut -d' ' -f1-3 /proc/loadavg)" >> $LOG; }
p 10 backprop-all --arm backprop --train-types all
p 10 dense-all-slw4 --arm dense --train-types all --set 'data.corruptions.weights={"scan_lines":4}'
p 15 backprop-all --arm backprop --train-types all
echo "queue3 done $(date -u +%T)" >> runs/sl29/queue3.log
