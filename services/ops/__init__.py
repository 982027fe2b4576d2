"""Operator commands that drive the stack: enqueue, status, stack."""
