#!/bin/bash
# After the queue: the pooled report (no training) and the test (round 31, longer31).
cd /work/wt/learn31
D=docs/results/longer31
nice -n 19 node bin/recovery-grpo.mjs sweep --pool runs/l31/base --seeds 55 --first-seed 50 --out runs/l31/base-report > $D/logs/pool-base.txt 2>&1
echo "pool base rc $?"
cp runs/l31/base-report/compare.md $D/base-compare.md
gzip -9 -c runs/l31/base-report/compare.json > $D/base-compare.json.gz
cd $D
python3 hypotheses.py ../../../runs/l31/base-report/compare.json ../drgrpo30/base-compare.json.gz > hypotheses.txt
python3 hypotheses.py base-compare.json.gz ../drgrpo30/base-compare.json.gz | cmp - hypotheses.txt && echo "same from the .gz copy"
python3 crossed_check.py ../../../runs/l31/base-report/compare.json > crossed_check.txt
cd /work/wt/learn31
nice -n 19 node --import tsx $D/crossed_ts_check.ts runs/l31/base-report/compare.json > $D/crossed_ts_check.txt
