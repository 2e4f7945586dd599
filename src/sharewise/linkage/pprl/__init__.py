"""Privacy-preserving record linkage: keyed Bloom-filter encodings and a matcher that sees encodings only."""
