"""Normalisation layers conditioned on the semantic map."""
