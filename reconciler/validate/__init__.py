"""`reconciler validate` as a pipeline: checks, then a reporter."""
