"""Security: keys, cryptography, categorization and safeguards for the records sharewise moves."""
