"""Record ids: opaque, time-sortable, URL-safe strings (ULID layout, Crockford base32).

Monotonic within a process: ids made in the same millisecond still sort in the order
they were made, which keeps outbox events in commit order per record.
"""

from __future__ import annotations

import os
import re
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ID_RE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
_lock = threading.Lock()
_last = [0, 0]


def new_id() -> str:
    """48 bits of milliseconds then 80 random bits (incremented within a millisecond)."""
    ms = int(time.time() * 1000)
    with _lock:
        if ms <= _last[0]:
            ms = _last[0]
            rand = _last[1] + 1
        else:
            rand = int.from_bytes(os.urandom(10), "big") >> 1  # headroom for increments
        _last[0], _last[1] = ms, rand
    value = (ms << 80) | (rand & ((1 << 80) - 1))
    out = []
    for _ in range(26):
        out.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(out))


def is_id(value: str) -> bool:
    return bool(ID_RE.match(value))
