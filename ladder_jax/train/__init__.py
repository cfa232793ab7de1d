"""Training: optimizer, SFT step, checkpoints and the training loop."""
