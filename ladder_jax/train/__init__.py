"""Training: optimizers, SFT and GRPO steps, the sampler, rewards, checkpoints, the curriculum."""
