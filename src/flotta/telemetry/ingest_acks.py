"""What ingest remembers and answers per record: txids stored lately, and acks to the cars."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from typing import Any

from flotta.gateway import protocol
from flotta.gateway.hub import Hub
from flotta.gateway.protocol import FrameType

# Txids per STREAM_ACKS frame.
ACKS_PER_FRAME = 1000
# A batch's acks are waited for this long: past it, a car not reading its link holds up
# nobody else (its acks, and the batch's others, go out in the background).
ACK_WAIT_S = 1.0

Ack = tuple[str, int, list[bytes]]
"""(VIN, config id, txids in arrival order)."""


class RecentTxids:
    """(config, txid) pairs stored lately, in two generations of `size` txids each."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._new: dict[int, set[bytes]] = {}
        self._old: dict[int, set[bytes]] = {}
        self._count = 0

    def seen(self, config_id: int, txid: bytes) -> bool:
        return txid in self._new.get(config_id, ()) or txid in self._old.get(config_id, ())

    def generations(self, config_id: int) -> tuple[Collection[bytes], Collection[bytes]]:
        """The config's txids remembered, newer and older (for many look-ups at once)."""
        return self._new.get(config_id, ()), self._old.get(config_id, ())

    def remember(self, config_id: int, txids: set[bytes]) -> None:
        self._new.setdefault(config_id, set()).update(txids)
        self._count += len(txids)
        if self._count >= self._size:
            self._old, self._new, self._count = self._new, {}, 0


class Acknowledger:
    """Sends STREAM_ACK (or, to cars that asked, STREAM_ACKS) frames for committed records."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        self._slow: set[str] = set()  # cars with acks waiting, in the background, to be sent
        self.tasks: set[asyncio.Task[Any]] = set()
        self.dropped = 0  # acks not sent: their car was still reading earlier ones

    async def acknowledge(self, acks: list[Ack]) -> None:
        """Ack each committed (or already stored) record to its car, a frame per config.

        Sent one after the other: a send to a link that takes it does not yield to the loop,
        where a task per car would wait a loop turn or two each, under load several ms."""
        left = acks[::-1]
        try:
            async with asyncio.timeout(ACK_WAIT_S):
                while left:
                    if left[-1][0] in self._slow:
                        self._later(left[-1])
                    else:
                        await self._send(*left[-1])
                    left.pop()
        except TimeoutError:
            # A car does not read its link: its acks (the one interrupted may get some twice,
            # which a car ignores) and the batch's others go out in the background.
            for ack in left:
                self._later(ack)

    def _later(self, ack: Ack) -> None:
        """Send acks in the background, one send at a time per car: while one is waiting for
        a car to read, that car's further acks are dropped (it resends those records, and
        they are acked as already stored)."""
        vin = ack[0]
        if vin in self._slow:
            self.dropped += len(ack[2])
            return
        self._slow.add(vin)
        task = asyncio.get_running_loop().create_task(self._send(*ack))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        task.add_done_callback(lambda _: self._slow.discard(vin))

    async def _send(self, vin: str, config_id: int, txids: list[bytes]) -> None:
        session = self._hub.sessions.get(vin)
        if session is None:
            return  # gone: it resends what was not acknowledged when it is back
        encode, send_to = protocol.encode, self._hub.send_to
        if session.batched_acks:
            for start in range(0, len(txids), ACKS_PER_FRAME):
                body = protocol.encode_txids(txids[start : start + ACKS_PER_FRAME])
                await send_to(vin, encode(FrameType.STREAM_ACKS, body, config_id))
        else:
            for txid in txids:
                await send_to(vin, encode(FrameType.STREAM_ACK, txid, config_id))
