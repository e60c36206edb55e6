#!/bin/sh
# Gaussian pairs D = 32, 64 again as in run_more.sh (8192 samples, full-rank quadratic terms,
# Gaussian start, 32 steps) with a 10x smaller Adam step (1e-4): at lr 1e-3 the training objective
# of w2gn and mm ended above their start's (heldout.py --with-start), i.e. the steps were too large
# for a start that is already optimal up to the sample moments.
set -x
export OMP_NUM_THREADS=1
PY=.venv/bin/python
OUT=experiments/results/ot
$PY benchmarks/ot.py --problems gaussian:32,gaussian:64 --solvers w2gn,mm --epochs 1 --samples 8192 \
    --quadratic-rank full --lr 1e-4 --no-ott --out $OUT/gaussian-32-64-lr1e-4 > $OUT/logs/gaussian-32-64-lr1e-4.log 2>&1
for D in 32 64; do for S in w2gn mm; do
    $PY $OUT/heldout.py $OUT/gaussian-32-64-lr1e-4/gaussian-$D/$S gaussian:$D --samples 8192 --with-start
done; done > $OUT/logs/gaussian-32-64-lr1e-4-heldout.jsonl
