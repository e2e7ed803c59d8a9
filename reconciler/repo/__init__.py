"""Files to documents: file sources, bounded YAML, parsing, findings, the repository layout."""
