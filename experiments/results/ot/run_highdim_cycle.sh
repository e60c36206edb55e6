#!/bin/sh
# As run_highdim_fullrank.sh (Mix3toMix10 D = 16, exact start, 100 epochs) with cycle weight 10:
# conjugate_gap.py showed g far from the conjugate of f at lambda = 1. The icnn ot command itself
# (metrics.json holds the scores); no baselines (see run_highdim_fullrank.sh for them).
set -x
export OMP_NUM_THREADS=1
OUT=experiments/results/ot
.venv/bin/icnn ot --benchmark mix3tomix10:16 --solver w2gn --epochs 100 --samples 16384 --batch-size 256 \
    --lr 1e-2 --schedule cosine --quadratic-rank 15 --cycle 10 --seed 0 --threads 1 \
    --out $OUT/w2gn-highdim-cycle10/mix3tomix10-16/w2gn > $OUT/logs/w2gn-highdim-cycle10-16.log 2>&1
