"""The data plane of share execution: dictionaries, share specifications, SQL and engines."""
