"""Pairing codes under strangers' attempts (issue 21, "pairing"), on a fake clock: codes for
devices that ask are rate-limited per source and burn only for their source; the owner's code
survives every stranger's guesses; all wrong guesses together are limited."""

from __future__ import annotations

import itertools

from wavry.rift.pairing import (
    CODES_PER_SOURCE_BURST,
    GUESSES_PER_MINUTE,
    MAX_ATTEMPTS,
    REISSUE_COOLDOWN_S,
    PairingCodes,
    PairingVerdict,
    pairing_proof,
)

H = bytes(32)  # a handshake hash


def codes() -> PairingCodes:
    counter = itertools.count(1)
    return PairingCodes(lambda n: next(counter).to_bytes(n, "big"))


def wrong(code: str) -> bytes:
    return pairing_proof(f"{(int(code) + 1) % 1_000_000:06d}", H)


def test_strangers_cannot_burn_the_owners_code() -> None:
    p = codes()
    issued = p.issue(0.0)
    assert issued is not None
    owner_code = issued[0]
    for i, stranger in enumerate(["10.0.0.5", "10.0.0.6"]):
        for k in range(MAX_ATTEMPTS):
            verdict, left = p.verify(wrong(owner_code), H, 1.0 + i + k / 10, stranger)
            assert verdict == PairingVerdict.WRONG and left == MAX_ATTEMPTS - k - 1
        # out of attempts at this code: that source only
        assert p.verify(wrong(owner_code), H, 3.0, stranger)[0] == PairingVerdict.NO_CODE
    assert p.active_code(3.0) == owner_code
    # the owner types it (a minute later: the strangers spent this minute's guesses)
    assert p.verify(pairing_proof(owner_code, H), H, 63.0, "192.168.1.7") == (
        PairingVerdict.OK,
        0,
    )
    assert p.active_code(64.0) is None  # used once


def test_a_device_that_asks_gets_its_own_code_which_burns_for_it_alone() -> None:
    p = codes()
    a = p.ensure(0.0, "10.0.0.5")
    assert a is not None
    assert p.ensure(0.1, "10.0.0.5") is None  # it has one
    b = p.ensure(0.2, "10.0.0.6")
    assert b is not None and b[0] != a[0]
    # another source cannot use it
    assert p.verify(pairing_proof(a[0], H), H, 0.3, "10.0.0.7")[0] == PairingVerdict.NO_CODE
    for k in range(MAX_ATTEMPTS):
        assert p.verify(wrong(a[0]), H, 1.0 + k, "10.0.0.5")[0] == PairingVerdict.WRONG
    assert p.active_code(6.0, "10.0.0.5") is None  # burnt
    assert p.ensure(6.0, "10.0.0.5") is None  # cool-down for that source
    assert p.active_code(6.0, "10.0.0.6") == b[0]  # the other device's code lives on
    assert p.ensure(6.0 + REISSUE_COOLDOWN_S, "10.0.0.5") is not None


def test_code_issuance_is_rate_limited_per_source() -> None:
    """Devices behind one address pairing one after another: a burst, then one a minute."""
    p = codes()
    t = 0.0
    for _ in range(CODES_PER_SOURCE_BURST):
        issued = p.ensure(t, "10.0.0.5")
        assert issued is not None
        assert p.verify(pairing_proof(issued[0], H), H, t, "10.0.0.5")[0] == PairingVerdict.OK
        t += 1.0
    assert p.ensure(t, "10.0.0.5") is None  # the burst is spent
    assert p.ensure(t, "10.0.0.6") is not None  # another source is not affected
    assert p.ensure(t + 60.0, "10.0.0.5") is not None


def test_while_the_owners_code_is_active_nobody_gets_another() -> None:
    p = codes()
    owner = p.issue(0.0)
    assert owner is not None
    assert p.ensure(1.0, "10.0.0.5") is None
    assert p.active_code(1.0, "10.0.0.5") == owner[0]  # a device that asks types the owner's


def test_all_wrong_guesses_together_are_limited_without_burning_anything() -> None:
    p = codes()
    owner = p.issue(0.0)
    assert owner is not None
    verdicts = [
        p.verify(wrong(owner[0]), H, 1.0, f"10.0.{i}.1")[0] for i in range(int(GUESSES_PER_MINUTE))
    ]
    assert verdicts == [PairingVerdict.WRONG] * int(GUESSES_PER_MINUTE)
    # the minute's guesses are spent: not even checked (the right code too), nothing burnt
    assert p.verify(wrong(owner[0]), H, 1.0, "10.9.9.9")[0] == PairingVerdict.LIMITED
    right = pairing_proof(owner[0], H)
    assert p.verify(right, H, 1.0, "192.168.1.7")[0] == PairingVerdict.LIMITED
    assert p.active_code(2.0) == owner[0]
    assert p.verify(right, H, 1.0 + 60.0 / GUESSES_PER_MINUTE, "192.168.1.7")[0] == (
        PairingVerdict.OK
    )
