"""Where approvals come from: one protocol, its sources side by side, one factory."""
