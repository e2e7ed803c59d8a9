"""The PostHog-compatible API: response shapes and routes."""
