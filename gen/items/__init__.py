"""Interactions for given items: one path for existing long-tail items (`augment`) and new items
(`cold_start`). Both hand a table of items and their row counts to `gen.items.pipeline.generate_items`,
which generates, assigns real users and timestamps, gates the rows as written, and reports."""
