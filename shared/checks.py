"""One pre-flight check's outcome, shared by the services that contribute checks."""

from __future__ import annotations

from dataclasses import dataclass

from shared.redact import mask_text


@dataclass(frozen=True)
class Check:
    """A named check that passed or failed, with one line saying what was found."""

    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        """`PASS  name: detail`; any URL in the detail (a library's error text) masked."""
        return f"{'PASS' if self.ok else 'FAIL'}  {self.name}: {mask_text(self.detail)}"
