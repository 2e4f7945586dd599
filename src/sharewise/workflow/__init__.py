"""The sharing-request workflow: agencies, people, roles, reviews and approvals."""
