import hashlib
import hmac

import pytest

from simulator.core import signing
from simulator.core.signing import hmac_sha256


@pytest.mark.parametrize("size", [0, 1, 2047, 2048, 2049, 4094, 4095, 10_000])
@pytest.mark.parametrize("key", [b"", b"whsec", b"k" * 64, b"long key " * 20])
def test_hmac_sha256_is_the_standard_hmac(key, size):
    message = bytes(range(256)) * (size // 256) + bytes(size % 256)
    assert hmac_sha256(key, message) == hmac.digest(key, message, "sha256") \
        == hmac.new(key, message, hashlib.sha256).digest()


def test_hmac_sha256_never_feeds_the_hash_a_piece_it_would_let_go_of_the_interpreter_lock_for(monkeypatch):
    # hashlib lets go of the lock for a piece of 2 KiB or more (and hmac.digest for any message):
    # the signing thread then waits behind the busy threads to get it back
    fed = []
    real_new = hmac.new

    class Watched:
        def __init__(self, state):
            self.state = state

        def copy(self):
            return Watched(self.state.copy())

        def update(self, piece):
            fed.append(len(piece))
            self.state.update(piece)

        def digest(self):
            return self.state.digest()

    monkeypatch.setattr(hmac, "new", lambda *args: Watched(real_new(*args)))
    monkeypatch.setattr(hmac, "digest", lambda *args: pytest.fail("hmac.digest lets go of the lock"))
    monkeypatch.setattr(signing, "_keyed", signing.Memo(64))
    message = b"x" * 10_000
    assert hmac_sha256(b"secret", message) == real_new(b"secret", message, "sha256").digest()
    assert sum(fed) == 10_000 and max(fed) < 2048
