#!/bin/bash
# After the queue (round 33, flow33): the test of preregistration.md from the two sweeps' per-seed results (no training).
cd /work/wt/flow33
D=docs/results/flow33
nice -n 19 node --import tsx $D/analyze.ts runs/f33/S runs/f33/Dk 65 66 67 > $D/hypotheses.txt 2>&1
echo "analyze rc $?"
for s in S Dk; do cp runs/f33/$s/compare.md $D/$s-compare.md 2>/dev/null; for k in 65 66 67; do [ -f runs/f33/$s/seed-$k.json ] && gzip -9 -c runs/f33/$s/seed-$k.json > $D/$s-seed-$k.json.gz; cp runs/f33/$s/arm-flow-*-seed$k.steps.jsonl $D/logs/ 2>/dev/null; done; done
