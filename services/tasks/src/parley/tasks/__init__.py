"""The tasks service: FIPA Contract Net rounds and cluster group runs."""
