#!/bin/sh
# The measured runs of the README table, one at a time, one thread (2 shared cores).
set -x
export OMP_NUM_THREADS=1
PY=.venv/bin/python
OUT=experiments/results/ot
$PY benchmarks/ot.py --problems mix3tomix10:2 --solvers w2gn,mm,amortized --epochs 20 --samples 16384 \
    --batch-size 256 --lr 1e-3 --out $OUT/mix3tomix10-2 > $OUT/logs/mix3tomix10-2.log 2>&1
$PY benchmarks/ot.py --problems gaussian:2,gaussian:4,gaussian:8,gaussian:16 --solvers w2gn,mm,amortized \
    --epochs 2 --samples 8192 --quadratic-rank full --no-ott --out $OUT/gaussian > $OUT/logs/gaussian.log 2>&1
$PY benchmarks/ot.py --problems mix3tomix10:4,mix3tomix10:8 --solvers w2gn,mm --epochs 20 --samples 16384 \
    --batch-size 256 --lr 1e-3 --no-ott --out $OUT/mix3tomix10-4-8 > $OUT/logs/mix3tomix10-4-8.log 2>&1
