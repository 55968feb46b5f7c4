"""Hyperparameter sweeps on Optuna: the sweep file's space, the shared storage, workers that take
trials until the budget is spent, and the summary they leave."""
