"""Running the monitoring stack from local binaries (`make up`) and in end-to-end tests."""
