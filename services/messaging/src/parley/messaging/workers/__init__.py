"""The messaging service's long-running work: the outbox and its start-up redelivery."""
