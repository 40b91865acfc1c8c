"""Staff casework on one person: grant moves with their SMS notices, payment result imports, and the inbox."""
