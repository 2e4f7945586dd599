"""The tamper-evident audit trail and the record of disclosures made."""
