"""Property tests of the VCP anti-replay counters against a simple reference model."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from tesla_protocol.command import keys_pb2
from tesla_protocol.command import universal_message_pb2 as um

from flotta.sim.vcp import (
    AuthenticatedCommand,
    ClientSigner,
    VehicleVerifier,
    generate_private_key,
    update_sliding_window,
)
from flotta.sim.vcp.verifier import WINDOW_SIZE

VIN = "5YJ30123456789ABC"
counters = st.lists(st.integers(min_value=1, max_value=200), max_size=60)


@given(start=st.integers(min_value=0, max_value=100), incoming=counters)
def test_sliding_window_matches_model(start: int, incoming: list[int]) -> None:
    """A counter is accepted iff never accepted before and not older than the window."""
    counter, window = start, 0
    seen = {start}
    for new in incoming:
        expected = new not in seen and (new > max(seen) or max(seen) - new <= WINDOW_SIZE)
        counter, window, ok = update_sliding_window(counter, window, new)
        assert ok == expected, (new, sorted(seen))
        if ok:
            seen.add(new)
        assert counter == max(seen)
        assert 0 <= window < 1 << 64


@given(jump=st.integers(min_value=1, max_value=0xFFFFFFFF))
def test_sliding_window_large_jumps_stay_bounded(jump: int) -> None:
    counter, window, ok = update_sliding_window(0, (1 << 64) - 1, jump)
    assert ok
    assert counter == jump
    assert 0 <= window < 1 << 64


class _Clock:
    now = 5_000.0

    def __call__(self) -> float:
        return self.now


def _run(domain: int, order: list[int]) -> list[bool]:
    clock = _Clock()
    verifier = VehicleVerifier(VIN, domain, generate_private_key(), clock)
    signer = ClientSigner(VIN, domain, generate_private_key(), clock=clock)
    verifier.enroll(signer.public_key, keys_pb2.ROLE_OWNER)
    request = signer.session_info_request()
    reply = verifier.handle(request)
    signer.accept_session_info(reply.message, bytes(request.uuid))  # type: ignore[union-attr]
    signed = {n: signer.sign(b"\x10\x01", counter=n) for n in sorted(set(order))}
    return [isinstance(verifier.handle(signed[n]), AuthenticatedCommand) for n in order]


@settings(max_examples=30, deadline=None)
@given(order=st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=25))
def test_vcsec_accepts_only_strictly_increasing(order: list[int]) -> None:
    results = _run(um.DOMAIN_VEHICLE_SECURITY, order)
    highest = 0
    for n, ok in zip(order, results, strict=True):
        assert ok == (n > highest)
        highest = max(highest, n) if ok else highest


@settings(max_examples=30, deadline=None)
@given(order=st.lists(st.integers(min_value=1, max_value=80), min_size=1, max_size=25))
def test_infotainment_never_accepts_a_counter_twice(order: list[int]) -> None:
    results = _run(um.DOMAIN_INFOTAINMENT, order)
    accepted = [n for n, ok in zip(order, results, strict=True) if ok]
    assert len(accepted) == len(set(accepted))
    assert set(accepted) >= {max(order)}
