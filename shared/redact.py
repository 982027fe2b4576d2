"""Masking secrets in values that get printed or logged: keys, passwords, and tokens in URLs.

RPC providers put API keys in endpoint URLs (`wss://user:TOKEN@host`, `...?apikey=TOKEN`,
`.../v3/TOKEN`), so a URL setting such as SUBTENSOR_NETWORK is a secret in part. A URL
keeps its scheme, host and port (what an operator needs to tell endpoints apart); its
userinfo, query values and token-like path segments become `***`.
"""

from __future__ import annotations

import logging
import re
from typing import Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
# Setting names whose whole value is a secret.
SECRET_NAME = re.compile(r"(SECRET|PASSWORD|PASSWD|TOKEN|ACCESS_KEY|API_KEY|PRIVATE)", re.I)
# A path segment that looks like a key rather than a word: long, letters and digits mixed.
TOKEN_SEGMENT = re.compile(r"^(?=.*[A-Za-z])(?=.*\d)[A-Za-z0-9_\-]{16,}$")
# A URL in a sentence: trailing punctuation belongs to the sentence.
URL_IN_TEXT = re.compile(r"[a-z][a-z0-9+.-]*://[^\s'\"<>]*[^\s'\"<>.,;:)]", re.I)


def mask_url(value: str) -> str:
    """The URL with userinfo, query values and token-like path segments masked."""
    try:
        parts = urlsplit(value)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # not a URL we can take apart: hide all of it
        return MASK
    if not parts.scheme or not parts.netloc:
        return value
    netloc = (f"{MASK}@" if "@" in parts.netloc else "") + (f"[{host}]" if ":" in host else host)
    path = "/".join(MASK if TOKEN_SEGMENT.match(seg) else seg for seg in parts.path.split("/"))
    query = urlencode([(k, MASK) for k, _ in parse_qsl(parts.query, keep_blank_values=True)],
                      safe="*")
    return urlunsplit((parts.scheme, netloc + port, path, query, MASK if parts.fragment else ""))


def mask_text(text: str) -> str:
    """Free text (an exception message) with every URL in it masked."""
    return URL_IN_TEXT.sub(lambda m: mask_url(m.group(0)), text)


def mask_setting(name: str, value) -> str:
    """How a setting may be shown: secrets as `***` (empty stays empty), URLs masked."""
    text = ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
    if SECRET_NAME.search(name):
        return MASK if text else ""
    return mask_text(text)


def url_secrets(value: str) -> list[str]:
    """The secret parts of a URL (userinfo, query values, token path segments), to scrub."""
    try:
        parts = urlsplit(value)
    except ValueError:
        return [value] if value else []
    found = [p for p in (parts.username, parts.password) if p]
    found += [v for _, v in parse_qsl(parts.query) if v]
    found += [seg for seg in parts.path.split("/") if TOKEN_SEGMENT.match(seg)]
    return found


class ScrubSecrets(logging.Filter):
    """Replaces known secret strings in every record a handler emits (a safety net for
    messages we do not write ourselves, such as a library's exception text)."""

    def __init__(self, secrets: Iterable[str]):
        super().__init__()
        # Longest first, so a secret containing another is replaced whole.
        self.secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        clean = self.scrub(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            # Formatted here so the traceback's exception text is scrubbed too.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.scrub(record.exc_text)
        return True


def settings_secrets(settings) -> list[str]:
    """Every secret string a settings object holds: secret-named values and URL secrets."""
    found = []
    for name, value in vars(settings).items():
        if not isinstance(value, str) or not value:
            continue
        if SECRET_NAME.search(name):
            found.append(value)
        elif "://" in value:
            found += url_secrets(value)
    return found
