"""tailsynth: train."""
