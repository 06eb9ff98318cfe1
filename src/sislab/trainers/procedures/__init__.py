"""Training procedures: one module per family of methods that train the same way."""
