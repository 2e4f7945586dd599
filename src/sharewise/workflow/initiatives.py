"""Initiatives: the toolkit's frame for lasting sharing: vision, sponsors, stakeholders, steps."""

from __future__ import annotations

STEPS: tuple[tuple[str, str], ...] = (
    ("define_use_case", "Define the problem, the use case and the expected value"),
    ("secure_leadership", "Secure leadership sponsorship and set up governance"),
    ("engage_stakeholders", "Identify and engage stakeholders; draft the vision statement"),
    ("inventory_records", "Inventory records and data elements; apply minimum necessary; map data flows"),
    ("legal_analysis", "Identify the governing laws and choose the legal pathway; document the analysis"),
    ("security", "Choose the security framework and controls; plan access, linkage and disclosure review"),
    ("agreements", "Draft and execute agreements; consent forms and notices where consent is the pathway"),
    ("implement", "Transfer or link data, grant access, train users, sign confidentiality pledges"),
    ("monitor", "Monitor and audit compliance; handle incidents; review outputs before release"),
    ("report_back", "Evaluate, report results to stakeholders and the public, renew or expand"),
)
STEP_IDS = tuple(step for step, _ in STEPS)

STAKEHOLDER_GROUPS = (
    "leadership",
    "program_workgroup",
    "legal_workgroup",
    "security_and_it",
    "front_line_staff",
    "researchers",
    "lived_experience_and_advocates",
)

STEP_STATUSES = ("not_started", "in_progress", "blocked", "done")
