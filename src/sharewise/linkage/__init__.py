"""Record linkage across programs: preparation, Splink models, person index and PPRL."""
