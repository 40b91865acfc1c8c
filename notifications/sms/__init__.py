"""SMS transport: owe a message (outbox), send it exactly once (dispatch, provider, worker), follow its fate
(delivery reports) and take what comes back (inbound keywords)."""
