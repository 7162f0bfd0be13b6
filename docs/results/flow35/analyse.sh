#!/usr/bin/env bash
# After the queue (prereg.md): the reach summary, the pre-registered analysis into hypotheses.txt, and the logs kept in
# docs/results/flow35/logs (no training). Run from the checkout's root: bash docs/results/flow35/analyse.sh
set -u
R=runs/f35
D=docs/results/flow35
SEEDS="70 71 72 73 74 75 76 77 78 79 80 81 82 83 84 85"
if ls $R/reach-[ab]*.txt > /dev/null 2>&1; then
  nice -n 19 node --import tsx docs/results/flow34/summarize-reach.ts $R/reach-[ab]*.txt > $R/reach-summary.txt
fi
nice -n 19 node --import tsx $D/analyse.ts $R $SEEDS > $D/hypotheses.txt 2>&1
echo "analyse rc $?"
mkdir -p $D/logs
cp $R/p-*.txt $R/reach-*.txt $R/warm*.txt $R/sft*.txt $R/chain*.log $D/logs/ 2>/dev/null
[ -f $R/run-log.txt ] && cp $R/run-log.txt $D/logs/
for N in $SEEDS; do [ -f $R/sft$N/seed-$N.json ] && gzip -9 -c $R/sft$N/seed-$N.json > $D/logs/sft-seed-$N.json.gz; done
exit 0
