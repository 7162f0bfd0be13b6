#!/bin/bash
# Round 29 (scanlines29), second queue, written after the first queue's dense-all / dense-sl / scalar-sl results
# (scan_lines-only dense GRPO raises scan_lines): replication on seed 15, training on the other 15 types only, and
# the KL/EMA and sigma variants on every type. Same form as queue.sh. Usage: queue2.sh [WAIT_PID]
set -u
[ -n "${1:-}" ] && while kill -0 "$1" 2>/dev/null; do sleep 5; done
O=runs/sl29/out
LS3=model.logStd=-5.809142990314028   # sigma 0.003
NOT_SL=lens_blur,lens_flare,motion_blur,dirty_lens,hsv_saturation,jpeg_compression,block_exchange,mean_shift,dark_illumination,atmospheric_turbulence,gaussian_noise,color_diffusion,sharpness_change,graffiti,watermark_damage
p() { local S=$1 name=$2; shift 2
  local LOG=runs/sl29/queue2.log
  echo "s$S $name start $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)" >> $LOG
  nice -n 5 node --import tsx scripts/scanlines29-probe.ts --warm runs/sl29/warm-gaussian-seed$S-sft1600.safetensors --seed $S --out $O/s$S-$name.json "$@" >> $LOG 2>&1
  local rc=$?
  echo "s$S $name end $(date -u +%T) rc $rc load $(cut -d' ' -f1-3 /proc/loadavg)" >> $LOG; }
p 15 dense-all --arm dense --train-types all
p 15 dense-sl --arm dense --train-types scan_lines
p 10 dense-notsl --arm dense --train-types $NOT_SL
p 10 dense-all-nokl --arm dense --train-types all --set grpo.beta=0 --set grpo.ema=0 --set grpo.emaWarmup=false
p 10 dense-all-sigma003 --arm dense --train-types all --set $LS3
p 10 none-sigma003-fixed --arm none --set $LS3
p 15 dense-notsl --arm dense --train-types $NOT_SL
p 15 scalar-all --arm scalar --train-types all
p 10 scalar-all --arm scalar --train-types all
echo "queue2 done $(date -u +%T)" >> runs/sl29/queue2.log
