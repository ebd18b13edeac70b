"""tailsynth: models."""
