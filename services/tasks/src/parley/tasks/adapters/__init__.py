"""The tasks service's adapters: how it talks to the messaging service."""
