"""The transactional store of the control plane: SQLAlchemy on SQLite (embedded) or PostgreSQL."""
