"""Training: optimizer, SFT and GRPO steps, rewards, checkpoints, the loop and the curriculum."""
