"""Training, evaluation and export CLIs (torch lives here and in models/ only)."""
