"""The metrics backend of the user's guide: records model calls and serves the four model_* metrics."""
