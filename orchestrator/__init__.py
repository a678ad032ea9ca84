"""sweepctl's control side: stages, strategies, the Optuna study and trial placement."""
