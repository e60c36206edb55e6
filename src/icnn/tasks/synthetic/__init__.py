"""Synthetic 2-D classification (Section 6.1, Figure 3): energies over the label y ∈ [0, 1]."""
