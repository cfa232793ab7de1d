<<<<<<< HEAD
"""Training: optimizer, SFT and GRPO steps, sampler, rewards, checkpoints, the loop and the curriculum."""
=======
"""Training: optimizer, SFT step, checkpoints and the training loop."""
>>>>>>> traincore
