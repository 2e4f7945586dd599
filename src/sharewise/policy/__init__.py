"""The law engine: law packs as data, conditions with unknowns, and evaluation."""
