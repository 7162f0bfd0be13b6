#!/bin/bash
# After the queue: the pooled report (no training) and the test (round 32, flow32).
cd /work/wt/flow32
D=docs/results/flow32
nice -n 19 node bin/recovery-grpo.mjs sweep --pool runs/f32/base --seeds 65 --first-seed 60 --out runs/f32/base-report > $D/logs/pool-base.txt 2>&1
echo "pool base rc $?"
cp runs/f32/base-report/compare.md $D/base-compare.md
gzip -9 -c runs/f32/base-report/compare.json > $D/base-compare.json.gz
cd $D
python3 hypotheses.py ../../../runs/f32/base-report/compare.json > hypotheses.txt
python3 hypotheses.py base-compare.json.gz | cmp - hypotheses.txt && echo "same from the .gz copy"
python3 crossed_check.py ../../../runs/f32/base-report/compare.json > crossed_check.txt
cd /work/wt/flow32
nice -n 19 node --import tsx $D/crossed_ts_check.ts runs/f32/base-report/compare.json > $D/crossed_ts_check.txt
