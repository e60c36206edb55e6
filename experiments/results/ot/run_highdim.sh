#!/bin/sh
# W2GN on Mix3toMix10 D = 16, 32, 64 at about 8 wall-minutes each (one thread), same recipe as
# run_long.sh otherwise; step counts from a timing probe (8 epochs: 12.5 ms/step at D = 32,
# 21 ms/step at D = 64). Linear and POT baselines in the same call.
set -x
export OMP_NUM_THREADS=1
PY=.venv/bin/python
OUT=experiments/results/ot
for spec in 16:550 32:450 64:300; do
    D=${spec%%:*}; EPOCHS=${spec##*:}
    $PY benchmarks/ot.py --problems mix3tomix10:$D --solvers w2gn --epochs $EPOCHS \
        --samples 16384 --batch-size 256 --lr 1e-2 --schedule cosine --no-ott --pot-samples 1024 \
        --out $OUT/w2gn-highdim/mix3tomix10-$D > $OUT/logs/w2gn-highdim-$D.log 2>&1
done
