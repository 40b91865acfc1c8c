"""Bulk SMS: campaigns from draft to completion, their fan-out into outbox rows, the COVID-19 series, quiet hours,
and the staff actions that steer them."""
