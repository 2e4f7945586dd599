"""Pure value types of sharewise: requests, determinations, outcomes and errors."""
