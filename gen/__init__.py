"""tailsynth: gen."""
