"""Where Ray runs: connecting to a local or existing cluster."""
