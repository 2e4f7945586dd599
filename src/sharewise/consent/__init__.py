"""Consent forms generated from the consent elements of every governing authority."""
