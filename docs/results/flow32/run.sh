#!/bin/bash
# The pre-registered queue of docs/results/flow32/preregistration.md (round 32, flow32): per seed N (60-64) one
# sweep with round 5's flow settings (docs/flow.md "Round 5: equal CPU seconds, from the converged warm start") and
# --budget 240 instead of 30: an 800-step flow SFT warm start (lr 3e-4, sft.ema 0.999), then from it Flow-GRPO with
# scalar advantages (S), with dense advantages (D) and continued SFT of the family (F), 240 CPU s each. Two seed
# processes at once at most (60, 61; then 62, 63 as slots free; then 64), every sweep at nice 19.
cd /work/wt/flow32
D=docs/results/flow32
mkdir -p $D/logs runs/f32
A="--budget 240 --budget-clock cpu --samples 32 --set data.size=32 --set data.evalSize=48 --set flow.steps=8 --set flow.evalSteps=10 --set flow.predict=residual --set flow.start=corrupted --set flow.startT=0.4 --set-for flow:sft.steps=800 --set-for flow:sft.lr=3e-4 --set-for flow:sft.ema=0.999"
ld() { cut -d' ' -f1-3 /proc/loadavg; }
one() {
  N=$1
  echo "seed $N start $(date +%T) load $(ld)" >> $D/run-log.txt
  nice -n 19 /usr/bin/time -v node bin/recovery-grpo.mjs sweep --methods flow:scalar,flow:dense,flow:sft $A --seeds $((N+1)) --first-seed $N --out runs/f32/base > $D/logs/seed$N.out.txt 2> $D/logs/seed$N.err.txt
  rc=$?
  echo "seed $N end $(date +%T) rc $rc load $(ld)" >> $D/run-log.txt
  W=runs/f32/base/warm-flow-seed$N-sft800.safetensors
  [ -f "$W" ] && echo "seed $N warm start $W sha256 $(sha256sum $W | cut -c1-64)" >> $D/run-log.txt
}
echo "queue start $(date +%T) load $(ld) at $(git rev-parse --short HEAD)" >> $D/run-log.txt
one 60 & sleep 2
one 61 & sleep 2
wait -n; one 62 & sleep 2
wait -n; one 63 & sleep 2
wait -n; one 64 & sleep 2
wait
echo "queue done $(date +%T) load $(ld)" >> $D/run-log.txt
