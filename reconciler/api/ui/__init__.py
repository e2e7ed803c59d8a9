"""The dashboard at `/ui/`: server-rendered pages over the same store, gate and helpers as the API."""
