"""Training: the noisy-student step, TF1-style optimisation, EMA, checkpoints and the training loop."""
