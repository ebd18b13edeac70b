"""tailsynth.evaluate.bench."""
