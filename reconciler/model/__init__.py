"""The vocabulary, pure: flags, documents, durations, states and the JSON Schemas."""
