"""Tasks: thin compositions of models, solvers and learning for each experiment of the paper."""
