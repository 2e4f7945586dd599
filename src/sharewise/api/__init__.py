"""The REST API (FastAPI, /api/v1) and the application factory that also mounts the web UI."""
