"""Everything that reaches a returnee by SMS, one sub-package per feature. No Flask here.

- `sms/`: the transport: texts, the outbox, the provider client, the dispatcher, RQ queues, jobs and worker,
  delivery reports and inbound SMS.
- `campaigns/`: bulk SMS: the campaign lifecycle, fan-out, the COVID-19 series, quiet hours, staff actions.
- `casework/`: what staff do about one person that may owe them an SMS: grant moves, payment imports, the inbox.
"""
