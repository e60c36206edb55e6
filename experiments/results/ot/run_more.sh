#!/bin/sh
# Follow-up runs (after run_all.sh): the D = 2 baselines and ott-jax at our W2GN's wall time, and
# MM again at a 10x smaller step (its lr 1e-2 run diverged from the Gaussian start: curve.csv).
set -x
export OMP_NUM_THREADS=1
PY=.venv/bin/python
OUT=experiments/results/ot
$PY benchmarks/ot.py --problems mix3tomix10:2 --solvers "" --samples 16384 --batch-size 256 --lr 1e-3 \
    --ott-seconds 150 --out $OUT/mix3tomix10-2-baselines > $OUT/logs/mix3tomix10-2-baselines.log 2>&1
$PY benchmarks/ot.py --problems mix3tomix10:2 --solvers mm --epochs 40 --samples 16384 --batch-size 256 \
    --lr 1e-3 --schedule cosine --no-ott --out $OUT/mix3tomix10-2-mm-lr1e-3 > $OUT/logs/mix3tomix10-2-mm-lr1e-3.log 2>&1
$PY benchmarks/ot.py --problems gaussian:32,gaussian:64 --solvers w2gn,mm,amortized --epochs 1 --samples 8192 \
    --quadratic-rank full --lr 1e-3 --no-ott --out $OUT/gaussian-32-64 > $OUT/logs/gaussian-32-64.log 2>&1
