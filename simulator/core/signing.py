"""HMAC-SHA256 computed without letting go of the interpreter lock.

``hmac.digest`` lets go of the interpreter lock for its OpenSSL call whatever the message's size
(hashlib's ``update`` does from 2 KiB up), and a thread that let go waits behind the busy threads
to get it back, up to the switch interval (5 ms). The timer dispatcher signs every due webhook
attempt: under a load of payments with two events each it fell behind by 500 to 2,300 events
(0.3 to 1.5 s of them) when each signature let go, and by 3 to 46 when none did. A webhook's or a
request's MAC costs a few microseconds, far less than that wait, so it is computed holding the
lock: the key is applied once and its state copied for each message, and the message is fed in
pieces below 2 KiB.
"""
from __future__ import annotations

import hmac

from .memo import Memo

_keyed = Memo(64)   # key -> HMAC-SHA256 state with the key applied (configured secrets: a few)
_PIECE = 2047       # bytes fed to the hash at once: hashlib lets go of the lock from 2048


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    keyed = _keyed.get(key)
    if keyed is None:
        keyed = _keyed.keep(key, hmac.new(key, None, "sha256"))
    mac = keyed.copy()
    if len(message) <= _PIECE:
        mac.update(message)
    else:
        view = memoryview(message)
        for at in range(0, len(message), _PIECE):
            mac.update(view[at:at + _PIECE])
    return mac.digest()
