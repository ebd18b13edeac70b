"""tailsynth.evaluate.bench.peers."""
