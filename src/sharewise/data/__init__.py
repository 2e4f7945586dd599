"""Reference data shipped with sharewise, each file with its source."""
