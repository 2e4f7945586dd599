"""Use cases: the only code that combines components; the CLI, API and web call these."""
