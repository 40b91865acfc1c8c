"""SMS: texts, the outbox, the provider client, workers and delivery-status rules. No Flask here."""
