"""``sislab chaos SPEC --seed N``: a sweep under a fault schedule drawn from a seed, and the
invariants that must hold after it (``chaos.invariants``)."""
