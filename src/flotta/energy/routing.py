"""Routing for energy sites: their requests over the cluster, on `flotta.site.<id>.rpc`.

Presence is `presence:site:<id>`, apart from the vehicles' `presence:<VIN>`; the machinery is
`gateway/cluster.py`'s, shared with vehicles. See docs/scaling.md.
"""

from __future__ import annotations

from typing import Any, Protocol

import orjson

from flotta.clock import Clock
from flotta.errors import SiteUnavailable
from flotta.gateway.cluster import ClusterLinks, LinkHolder, LinkKind
from flotta.ports.bus import Bus
from flotta.ports.kv import KV

SITES = LinkKind("energy site", "presence:site:", "flotta.site.", SiteUnavailable, SiteUnavailable)

# Request kinds (first byte of a request; `T`, takeover, is the cluster's own).
REQUEST = b"R"  # JSON request for the site -> its JSON reply
REPORT = b"S"  # empty -> JSON of the state the site last pushed, without asking the site

# Reading the last report never waits on the site, only on the owning process.
REPORT_TIMEOUT_S = 2.0


class LocalSites(LinkHolder, Protocol):
    """The energy hub's local-only operations, run on behalf of other processes."""

    async def local_request(self, site_id: int, body: dict[str, Any]) -> dict[str, Any]: ...

    def mirror(self, site_id: int) -> dict[str, Any]: ...


def _json_object(data: bytes) -> dict[str, Any]:
    value = orjson.loads(data)
    if not isinstance(value, dict):
        raise SiteUnavailable("the energy site's gateway answered malformed JSON")
    return value


class SiteRouter(ClusterLinks[LocalSites]):
    """Publishes this process's energy sites to the cluster and reaches the others' sites."""

    def __init__(
        self, bus: Bus, kv: KV, local: LocalSites, presence_ttl_s: float, clock: Clock
    ) -> None:
        super().__init__(SITES, bus, kv, local, presence_ttl_s, clock)

    async def _run(self, key: str, kind: bytes, body: bytes) -> bytes:
        if kind == REQUEST:
            return orjson.dumps(await self.local.local_request(int(key), _json_object(body)))
        if kind == REPORT:
            return orjson.dumps(self.local.mirror(int(key)))
        return await super()._run(key, kind, body)

    async def request(self, site_id: int, body: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        """The site's reply through the process holding its link; 408 when none does."""
        reply = await self.call(str(site_id), REQUEST + orjson.dumps(body), timeout_s)
        if reply is None:
            raise SiteUnavailable()
        return _json_object(reply)

    async def report(self, site_id: int) -> dict[str, Any]:
        """The state the site last pushed to whichever process holds it; {} when offline."""
        reply = await self.call(str(site_id), REPORT, REPORT_TIMEOUT_S)
        return {} if reply is None else _json_object(reply)
