#!/usr/bin/env bash
# round 34's one-change runs from seed 60's warm start, one after another (commands in docs/results/flow34/command.txt)
cd /work/wt/flow34
W=runs/f34/warm/warm-flow-seed60-sft800.safetensors
A=$(cat runs/f34/A.txt)
run() { local label=$1; shift; echo "$(date -u +%T) start $label"; nice -n 19 /usr/bin/time -f "%U user %S sys %e wall" node --import tsx docs/results/flow33/probe.ts $W 120 $label --eval 8 --save-at 40 "$@" > runs/f34/p-$label.txt 2>&1; echo "$(date -u +%T) end $label rc $?"; }
run wend flow.sde.window.start=5
run last flow.sde.lastStepSde=true
run w7 flow.sde.window.start=0 flow.sde.window.size=7
run klfg flow.klForm=flow_grpo grpo.beta=0.04
echo "$(date -u +%T) start velocity warm start"
nice -n 19 /usr/bin/time -v node bin/recovery-grpo.mjs sweep --methods flow:sft ${A/flow.predict=residual/flow.predict=velocity} --budget 15 --budget-clock cpu --seeds 61 --first-seed 60 --out runs/f34/warmv > runs/f34/warmv.out 2> runs/f34/warmv.err
echo "$(date -u +%T) end velocity warm start rc $?"
W=runs/f34/warmv/warm-flow-seed60-sft800.safetensors
run vel flow.predict=velocity
