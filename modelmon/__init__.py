"""modelmon: compile SLO specs for AI model traffic into Prometheus rules and their tests."""
