"""Image encoders (VAE style) for multi-modal synthesis."""
