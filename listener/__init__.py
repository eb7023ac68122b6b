"""The long-running service shell: consumption, scoring, buckets, alert delivery, CLI."""
