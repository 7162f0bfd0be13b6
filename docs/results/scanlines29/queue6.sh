#!/bin/bash
# Round 29 (scanlines29), sixth queue (written after queues 1-5, before the report): a third seed, 30 (fresh: no
# round used it), for the main contrasts: its 1600-step warm start as sweep --methods trains it, then dense GRPO on
# every type / scan_lines only / the other 15 types, reward backprop on every type, and scan_lines drawn 4x.
set -u
S=30
O=runs/sl29/out
LOG=runs/sl29/queue6.log
NOT_SL=lens_blur,lens_flare,motion_blur,dirty_lens,hsv_saturation,jpeg_compression,block_exchange,mean_shift,dark_illumination,atmospheric_turbulence,gaussian_noise,color_diffusion,sharpness_change,graffiti,watermark_damage
echo "warm start start $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)" >> $LOG
nice -n 5 node --import tsx scripts/scanlines29-warm.ts $S 1600 runs/sl29/warm-gaussian-seed$S-sft1600.safetensors >> runs/sl29/warm30.log 2>&1
echo "warm start end $(date -u +%T) rc $? load $(cut -d' ' -f1-3 /proc/loadavg)" >> $LOG
p() { local name=$1; shift
  echo "s$S $name start $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)" >> $LOG
  nice -n 5 node --import tsx scripts/scanlines29-probe.ts --warm runs/sl29/warm-gaussian-seed$S-sft1600.safetensors --seed $S --out $O/s$S-$name.json "$@" >> $LOG 2>&1
  local rc=$?
  echo "s$S $name end $(date -u +%T) rc $rc load $(cut -d' ' -f1-3 /proc/loadavg)" >> $LOG; }
p dense-all --arm dense --train-types all
p dense-sl --arm dense --train-types scan_lines
p dense-notsl --arm dense --train-types $NOT_SL
p backprop-all --arm backprop --train-types all
p dense-all-slw4 --arm dense --train-types all --set 'data.corruptions.weights={"scan_lines":4}'
echo "queue6 done $(date -u +%T)" >> $LOG
