#!/bin/bash
# The pre-registered queue of docs/results/flow33/preregistration.md (round 33, flow33): per seed N (65-67) two sweeps
# with round 32's flow settings (240 CPU s per arm): S, scalar Flow-GRPO at grpo.beta 0.004 (the flow family's new
# default), which also trains the seed's 800-step warm start; then Dk, dense Flow-GRPO at grpo.beta 0.04, from that
# warm start (--from). Two seed processes at once at most (65 and 66, then 67), every sweep at nice 19.
cd /work/wt/flow33
D=docs/results/flow33
mkdir -p $D/logs runs/f33
A="--budget 240 --budget-clock cpu --samples 32 --set data.size=32 --set data.evalSize=48 --set flow.steps=8 --set flow.evalSteps=10 --set flow.predict=residual --set flow.start=corrupted --set flow.startT=0.4 --set-for flow:sft.steps=800 --set-for flow:sft.lr=3e-4 --set-for flow:sft.ema=0.999"
ld() { cut -d' ' -f1-3 /proc/loadavg; }
# the pre-registered cut-off: a sweep still running at 13:55 UTC is stopped (timeout) and its seed left out
END=$(date -u -d "13:55" +%s)
left() { echo $((END - $(date +%s))); }
one() {
  N=$1
  echo "seed $N S start $(date +%T) load $(ld)" >> $D/run-log.txt
  nice -n 19 /usr/bin/time -v timeout $(left) node bin/recovery-grpo.mjs sweep --methods flow:scalar $A --seeds $((N+1)) --first-seed $N --out runs/f33/S > $D/logs/seed$N-S.out.txt 2> $D/logs/seed$N-S.err.txt
  rc=$?
  echo "seed $N S end $(date +%T) rc $rc load $(ld)" >> $D/run-log.txt
  W=runs/f33/S/warm-flow-seed$N-sft800.safetensors
  [ -f "$W" ] && echo "seed $N warm start $W sha256 $(sha256sum $W | cut -c1-64)" >> $D/run-log.txt
  [ $rc -eq 0 ] || return
  echo "seed $N Dk start $(date +%T) load $(ld)" >> $D/run-log.txt
  nice -n 19 /usr/bin/time -v timeout $(left) node bin/recovery-grpo.mjs sweep --methods flow:dense $A --set grpo.beta=0.04 --from "flow=runs/f33/S/warm-flow-seed{seed}-sft800.safetensors" --seeds $((N+1)) --first-seed $N --out runs/f33/Dk > $D/logs/seed$N-Dk.out.txt 2> $D/logs/seed$N-Dk.err.txt
  echo "seed $N Dk end $(date +%T) rc $? load $(ld)" >> $D/run-log.txt
}
( while true; do echo "$(date +%T) $(ld)" >> $D/load.txt; sleep 60; done ) &
LOADER=$!
echo "queue start $(date +%T) load $(ld) at $(git rev-parse --short HEAD)" >> $D/run-log.txt
one 65 & P65=$!; sleep 2
one 66 & P66=$!; sleep 2
wait -n $P65 $P66; one 67 & P67=$!; sleep 2
wait $P65 $P66 $P67
kill $LOADER
echo "queue done $(date +%T) load $(ld)" >> $D/run-log.txt
