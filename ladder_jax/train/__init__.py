"""Training: optimizer, SFT and GRPO steps, sampler, rewards, checkpoints, the loop and the curriculum."""
