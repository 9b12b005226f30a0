"""A DHT node's records API (openapi/dht.yaml): values and dictionaries of subkeys, each with an expiration."""
from __future__ import annotations

import time
from typing import Any, Dict, List, Mapping, Optional, Sequence
from urllib.parse import quote

from .transport import ServiceClient


class DHTClient(ServiceClient):
    """Stores and finds records through any of the given DHT nodes (``hivemind-dht``).

    A value is any JSON; ``expiration`` is seconds since the Unix epoch (or use
    ``ttl``, seconds from now). A store wins only with a later expiration. A key
    or subkey naming ``[owner:<public key>]`` needs the owner's ``signature``
    (see openapi/dht.yaml for what is signed).
    """

    def store(self, key: str, value: Any, *, expiration: Optional[float] = None, ttl: Optional[float] = None,
              subkey: Optional[str] = None, signature: Optional[str] = None) -> Dict[str, Any]:
        """Stores one record (or one subkey); answers ``{"key", "stored", "replicas"}``.

        Keys with ``/`` go through the batch route, as the document asks.
        """
        record = _record(key, value, expiration, ttl, subkey, signature)
        if "/" in key:
            return self.store_many([record])[0]
        body = {k: v for k, v in record.items() if k != "key"}
        return self.call("PUT", "/v1/records/" + quote(key, safe=""), json=body).json()

    def store_many(self, records: Sequence[Mapping[str, Any]]) -> List[Dict[str, Any]]:
        """``POST /v1/batch/store``: records as ``{"key", "value", "expiration_time", "subkey"?, "signature"?}``; one result each."""
        return self.call("POST", "/v1/batch/store", json={"records": list(records)}).json()["results"]

    def get(self, key: str, *, latest: bool = False) -> Optional[Dict[str, Any]]:
        """The key's entry: ``{"key", "value", "expiration_time"}`` or ``{"key", "subkeys": {subkey: {"value", "expiration_time"}}, ...}``; None if absent."""
        if "/" in key:
            return self.get_many([key], latest=latest)[0]
        answer = self.call("GET", "/v1/records/" + quote(key, safe=""), params={"latest": latest}, ok=(404,))
        return None if answer.status == 404 else answer.json()

    def get_many(self, keys: Sequence[str], *, latest: bool = False) -> List[Optional[Dict[str, Any]]]:
        """``POST /v1/batch/get``: one entry (or None) per key, in one search."""
        return self.call("POST", "/v1/batch/get", json={"keys": list(keys), "latest": latest}).json()["results"]

    def node(self) -> Dict[str, Any]:
        """``GET /v1/node``: the node's id, address, routing table and record counts."""
        return self.call("GET", "/v1/node").json()


def _record(key: str, value: Any, expiration: Optional[float], ttl: Optional[float], subkey: Optional[str],
            signature: Optional[str]) -> Dict[str, Any]:
    if (expiration is None) == (ttl is None):
        raise ValueError("give either expiration (seconds since the epoch) or ttl (seconds from now)")
    record: Dict[str, Any] = {"key": key, "value": value, "expiration_time": expiration if expiration is not None else time.time() + ttl}
    if subkey is not None:
        record["subkey"] = subkey
    if signature is not None:
        record["signature"] = signature
    return record
