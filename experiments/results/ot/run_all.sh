#!/bin/sh
# The measured runs of the README table, one at a time, one thread (2 cores shared by 6 people).
# Settings fixed before any run (Adam 1e-2 with a cosine schedule, batch 256, Gaussian start);
# the final weights are scored, nothing is selected with the true map.
set -x
export OMP_NUM_THREADS=1
PY=.venv/bin/python
OUT=experiments/results/ot
COMMON="--samples 16384 --batch-size 256 --lr 1e-2 --schedule cosine"
$PY benchmarks/ot.py --problems mix3tomix10:2 --solvers w2gn,mm,amortized --epochs 40 --amortized-epochs 8 \
    $COMMON --out $OUT/mix3tomix10-2 > $OUT/logs/mix3tomix10-2.log 2>&1
$PY benchmarks/ot.py --problems gaussian:2,gaussian:4,gaussian:8,gaussian:16 --solvers w2gn,mm,amortized \
    --epochs 2 --samples 8192 --quadratic-rank full --lr 1e-3 --no-ott --out $OUT/gaussian > $OUT/logs/gaussian.log 2>&1
$PY benchmarks/ot.py --problems mix3tomix10:4,mix3tomix10:8 --solvers w2gn,mm --epochs 40 $COMMON --no-ott \
    --out $OUT/mix3tomix10-4-8 > $OUT/logs/mix3tomix10-4-8.log 2>&1
