#!/bin/bash
# After the queue: the pooled reports (no training) and the test (round 30, drgrpo30).
cd /work/wt/learn30
D=docs/results/drgrpo30
for r in base nostd nostdkl; do
  nice -n 19 node bin/recovery-grpo.mjs sweep --pool runs/d30/$r --seeds 45 --first-seed 40 --out runs/d30/$r-report > $D/logs/pool-$r.txt 2>&1
  echo "pool $r rc $?"
  cp runs/d30/$r-report/compare.md $D/$r-compare.md
  gzip -9 -c runs/d30/$r-report/compare.json > $D/$r-compare.json.gz
done
cd $D
python3 hypotheses.py ../../../runs/d30/base-report/compare.json ../../../runs/d30/nostd-report/compare.json ../../../runs/d30/nostdkl-report/compare.json > hypotheses.txt
python3 hypotheses.py base-compare.json.gz nostd-compare.json.gz nostdkl-compare.json.gz | cmp - hypotheses.txt && echo "same from the .gz copies"
cd /work/wt/learn30
nice -n 19 node --import tsx $D/crossed_ts_check.ts runs/d30/base-report/compare.json runs/d30/nostd-report/compare.json runs/d30/nostdkl-report/compare.json > $D/crossed_ts_check.txt
cd $D
(for r in base nostd nostdkl; do echo "== $r"; python3 crossed_check.py ../../../runs/d30/$r-report/compare.json; done) > crossed_check.txt
