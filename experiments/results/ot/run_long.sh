#!/bin/sh
# Longer W2GN runs (about 5 CPU-minutes each at one thread), same settings as run_all.sh otherwise.
set -x
export OMP_NUM_THREADS=1
PY=.venv/bin/python
OUT=experiments/results/ot
$PY benchmarks/ot.py --problems mix3tomix10:2,mix3tomix10:4,mix3tomix10:8 --solvers w2gn --epochs 150 \
    --samples 16384 --batch-size 256 --lr 1e-2 --schedule cosine --no-ott --pot-samples 1024 \
    --out $OUT/w2gn-long > $OUT/logs/w2gn-long.log 2>&1
