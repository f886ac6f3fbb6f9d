"""Guiding a language model with the token-level reward (reward-weighted MLE, REINFORCE): config, trainer."""
