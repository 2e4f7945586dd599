"""Agreements: a clause library as data, and drafting agreements from a determination and the parties."""
