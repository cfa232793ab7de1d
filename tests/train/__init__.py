"""Training: tests of the optimizer, SFT step, checkpoints and the training loop."""
