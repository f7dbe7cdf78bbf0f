"""The deployment service: rolls new agent definitions out (immediately or by canary) and back."""
