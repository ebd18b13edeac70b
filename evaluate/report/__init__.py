"""tailsynth.evaluate.report."""
