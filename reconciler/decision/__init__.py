"""The one judgement shared by the reconcile pass, `plan` and `check-approvals`."""
