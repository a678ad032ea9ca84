"""sweepctl's control side: the sweep spec, the CLI, and (later) the sweep stages."""
