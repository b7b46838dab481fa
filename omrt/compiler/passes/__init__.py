"""Graph rewrites on the compiler IR, one job per module."""
