"""Residual blocks shared by generators."""
