"""The token-level reward model: config, model, losses, trainer, scoring and heatmaps."""
