"""The web application: server-rendered pages over the same services the CLI and API call."""
