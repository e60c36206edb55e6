#!/bin/sh
# run_highdim_cycle.sh's settings (exact start, cycle weight 10, 100 epochs) at D = 32.
set -x
export OMP_NUM_THREADS=1
OUT=experiments/results/ot
.venv/bin/icnn ot --benchmark mix3tomix10:32 --solver w2gn --epochs 100 --samples 16384 --batch-size 256 \
    --lr 1e-2 --schedule cosine --quadratic-rank 31 --cycle 10 --seed 0 --threads 1 \
    --out $OUT/w2gn-highdim-cycle10/mix3tomix10-32/w2gn > $OUT/logs/w2gn-highdim-cycle10-32.log 2>&1
