"""Events: recorded in the transaction that changes a handoff (the outbox),
relayed to Redis after commit, and the registry of open streams."""
