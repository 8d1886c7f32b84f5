"""Learning: the surrogate families, training, run directories, checkpoints."""
