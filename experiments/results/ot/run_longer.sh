#!/bin/sh
# W2GN for 400 epochs (25600 steps), otherwise as run_long.sh.
set -x
export OMP_NUM_THREADS=1
PY=.venv/bin/python
OUT=experiments/results/ot
$PY benchmarks/ot.py --problems mix3tomix10:2,mix3tomix10:4 --solvers w2gn --epochs 400 \
    --samples 16384 --batch-size 256 --lr 1e-2 --schedule cosine --no-ott --pot-samples 1024 \
    --out $OUT/w2gn-longer > $OUT/logs/w2gn-longer.log 2>&1
