#!/usr/bin/env bash
# One chain of round 35's confirmatory runs (prereg.md): claims the next unclaimed seed of SEEDS, in order, and runs
# its warm start, arms (a) (b) (c) and the reach, until no seed is left or CLAIM_UNTIL (UTC) has passed; every
# command is stopped at STOP (UTC). Run from the checkout's root: bash docs/results/flow35/seeds.sh CHAIN
# Its own log (stdout) holds only start/end lines, return codes and each warm start's sha256 (no results: no peeking).
# R, SFT, STEPS, EVAL, REACH_GROUPS default to prereg.md's values; only the smoke test (command.txt) sets them smaller.
set -u
CHAIN=${1:?usage: seeds.sh CHAIN}
SEEDS=${SEEDS:-"70 71 72 73 74 75 76 77 78 79 80 81 82 83 84 85"}
CLAIM_UNTIL=${CLAIM_UNTIL:-19:05}
STOP=${STOP:-19:20}
R=${R:-runs/f35}
SFT=${SFT:-800}
STEPS=${STEPS:-120}
EVAL=${EVAL:-8}
REACH_GROUPS=${REACH_GROUPS:-8}
# round 32/33/34's A= (docs/results/flow34/command.txt) with --samples 8: the sweeps evaluate on probe.ts's 128 draws
A="--samples $EVAL --set data.size=32 --set data.evalSize=48 --set flow.steps=8 --set flow.evalSteps=10 --set flow.predict=residual --set flow.start=corrupted --set flow.startT=0.4 --set-for flow:sft.steps=$SFT --set-for flow:sft.lr=3e-4 --set-for flow:sft.ema=0.999"
P="node --import tsx docs/results/flow33/probe.ts"
REACH="node --import tsx docs/results/flow34/reach.ts"
mkdir -p $R runs/f33
now() { date -u +%T; }
left() { echo $(( $(date -u -d "$STOP" +%s) - $(date -u +%s) )); }
# run LABEL COMMAND...: the command at nice 19 with the time left until STOP, its output in $R/LABEL.txt
run() {
  local label=$1; shift
  local s; s=$(left)
  if [ "$s" -le 0 ]; then echo "$(now) skip $label (past $STOP)"; return 1; fi
  echo "$(now) start $label (load $(cut -d' ' -f1-3 /proc/loadavg))"
  nice -n 19 /usr/bin/time -f "%U user %S sys %e wall" timeout "$s" "$@" > "$R/$label.txt" 2>&1
  local rc=$?
  echo "$(now) end $label rc $rc"
  return $rc
}
for N in $SEEDS; do
  if [ "$(date -u +%s)" -ge "$(date -u -d "$CLAIM_UNTIL" +%s)" ]; then echo "$(now) chain $CHAIN: past $CLAIM_UNTIL, no more seeds"; break; fi
  mkdir "$R/claim-$N" 2>/dev/null || continue
  echo "$(now) chain $CHAIN claims seed $N"
  run warm$N node bin/recovery-grpo.mjs sweep --methods flow:sft $A --budget 1 --budget-clock cpu --seeds $((N + 1)) --first-seed $N --out $R/warm$N || continue
  W=$R/warm$N/warm-flow-seed$N-sft$SFT.safetensors
  echo "$(now) seed $N warm start sha256 $(sha256sum "$W" | cut -c1-16)"
  run p-a$N $P "$W" $STEPS f35a$N --eval $EVAL --save-at $STEPS run.seed=$N || continue
  run p-b$N $P "$W" $STEPS f35b$N --eval $EVAL --save-at $STEPS run.seed=$N flow.sde.window.start=5 || continue
  # (c)'s budget: the CPU seconds probe.ts printed for (a)'s STEPS steps (read by the script, not shown)
  C=$(sed -n "s/^f35a[0-9]* done: $STEPS steps, \([0-9][0-9]*\) CPU s\$/\1/p" "$R/p-a$N.txt")
  if [ -z "$C" ]; then echo "$(now) seed $N: no CPU seconds in p-a$N.txt"; continue; fi
  run sft$N node bin/recovery-grpo.mjs sweep --methods flow:sft $A --from "flow=$W" --budget "$C" --budget-clock cpu --seeds $((N + 1)) --first-seed $N --out $R/sft$N || continue
  run p-c$N $P $R/sft$N/arm-flow-sft-seed$N.safetensors 0 f35c$N --eval $EVAL run.seed=$N || continue
  run reach-a$N $REACH runs/f33/f35a$N-step$STEPS.safetensors $REACH_GROUPS run.seed=$N
  run reach-b$N $REACH runs/f33/f35b$N-step$STEPS.safetensors $REACH_GROUPS run.seed=$N flow.sde.window.start=5
  echo "$(now) chain $CHAIN seed $N done"
done
echo "$(now) chain $CHAIN ends"
