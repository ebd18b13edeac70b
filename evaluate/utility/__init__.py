"""tailsynth.evaluate.utility."""
