"""The deployment service's long-running loop: the board (deployments folded, stage timers)."""
