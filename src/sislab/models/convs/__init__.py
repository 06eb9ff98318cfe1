"""Convolutions conditioned per pixel on semantic vectors (SC-GAN's SCC and its baselines)."""
