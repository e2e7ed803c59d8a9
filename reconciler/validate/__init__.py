"""`reconciler validate` as a pipeline: load, check and locate (`pipeline`), then a reporter (`report`)."""
