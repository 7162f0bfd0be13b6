#!/bin/bash
# After the queue: the pooled report of this round's sweeps (no training) and the test (round 31, bp31).
cd /work/wt/bp31
D=docs/results/backprop31
nice -n 19 node bin/recovery-grpo.mjs sweep --pool runs/bp31/base --seeds 55 --first-seed 50 --out runs/bp31/base-report > $D/logs/pool-base.txt 2>&1
echo "pool base rc $?"
cp runs/bp31/base-report/compare.md $D/bp-compare.md
gzip -9 -c runs/bp31/base-report/compare.json > $D/bp-compare.json.gz
cd $D
python3 hypotheses.py ../../../runs/bp31/base-report/compare.json ../longer31/base-compare.json.gz run-log.txt ../longer31/run-log.txt > hypotheses.txt
python3 hypotheses.py bp-compare.json.gz ../longer31/base-compare.json.gz run-log.txt ../longer31/run-log.txt | cmp - hypotheses.txt && echo "same from the .gz copy"
