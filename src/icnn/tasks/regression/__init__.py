"""Fit an FICNN/PICNN to data ``(x, y) -> target`` or to a built-in convex target (``icnn train``)."""
