"""tailsynth.evaluate.measures."""
