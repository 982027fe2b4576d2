"""Subcommands of the miner service."""

from __future__ import annotations


def add_commands(sub) -> None:
    """Register this service's subcommands on the aml-miner parser."""
