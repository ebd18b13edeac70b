"""tailsynth: evaluate."""
