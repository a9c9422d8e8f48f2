"""Pseudonymous user ids: with WAREHOUSE_PSEUDONYMISE_KEY set, every user_id is stored as a keyed hash
(HMAC-SHA256 under that key), so the warehouse never holds the id the application sent, yet one user
keeps one id (DAU, top users and sessions still count right). Without the key nobody can reverse it or
recompute it from a guessed id; a new key gives every user a new id from then on."""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable

KEY_SETTING = "WAREHOUSE_PSEUDONYMISE_KEY"
PREFIX = "p_"  # a stored id that starts with this was pseudonymised
HEX_DIGITS = 24  # 96 bits: no two of a few billion users share one


def pseudonym(key: str, user_id: str) -> str:
    return PREFIX + hmac.new(key.encode(), user_id.encode(), hashlib.sha256).hexdigest()[:HEX_DIGITS]


def pseudonymiser(key: str | None = None) -> Callable[[str | None], str | None] | None:
    """The function that replaces a user_id (None when no key is set: ids are stored as sent)."""
    key = os.environ.get(KEY_SETTING, "") if key is None else key
    if not key:
        return None
    seen: dict[str, str] = {}  # a file repeats its users: hash each once

    def replace(user_id: str | None) -> str | None:
        if user_id is None:
            return None
        found = seen.get(user_id)
        if found is None:
            found = seen[user_id] = pseudonym(key, user_id)
        return found

    return replace
