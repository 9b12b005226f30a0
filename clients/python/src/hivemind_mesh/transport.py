"""HTTP for every client: pooled connections, a timeout and a byte cap on every call, and failover.

A client names one or more replicas of a service (comma-separated URLs or a
list). A call goes to the replica that answered last; when it gets no answer or
a 5xx, the next is tried. A 4xx is the caller's mistake and is raised at once.
Each thread has its own ``requests.Session`` (sessions are not thread-safe),
so connections are reused across calls of the same thread.
"""
from __future__ import annotations

import http.client
import json as jsonlib
import os
import re
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple, Union

import requests
import urllib3

from .errors import MeshError
from .identity import certificate_key, key_pin, vouched_pin

OCTETS = "application/octet-stream"
#: Largest response body read by default (the services' own default body limit).
DEFAULT_MAX_RESPONSE_BYTES = 256 << 20
#: Seconds allowed to open a connection, whatever the call's own timeout.
CONNECT_TIMEOUT = 5.0
#: Peer addresses (host and port) a thread's session keeps a key-checking adapter for, at most.
MAX_PINNED_ORIGINS = 256

URLs = Union[str, Sequence[str]]


def split_urls(urls: URLs) -> List[str]:
    """``"http://a:1,http://b:2"`` or a list of URLs, without trailing slashes."""
    items = urls.split(",") if isinstance(urls, str) else list(urls)
    result = [item.strip().rstrip("/") for item in items if item.strip()]
    if not result:
        raise ValueError("at least one service URL is needed, e.g. http://127.0.0.1:8080")
    for url in result:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"service URLs start with http:// or https://, got {url!r}")
    return result


@dataclass
class Answer:
    """One HTTP answer, read whole (within the byte cap)."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    url: str

    def json(self) -> Any:
        try:
            return jsonlib.loads(self.body)
        except ValueError as error:
            raise MeshError("bad_response", f"expected JSON, got {self.body[:200]!r}: {error}", self.status, self.url) from None


@dataclass(frozen=True)
class Swarm:
    """A moderated TLS swarm's member (README, Security): ``ca`` is the swarm's root certificate, which every
    server must chain to (members are named by keys, not host names, so no name is checked, and the web's
    authorities are not consulted); ``certificate`` (from ``hivemind swarm admit``) and ``identity`` (its key)
    are presented on every call as the TLS client certificate. Without them, calls get 401 ``membership_required``.

    A peer address (``https://PEER_ID@host:port``, as records name peers) is called only if the server's
    certificate holds that peer's key, or a key the peer's signed identity card vouches for (a server with
    an operator's certificate, ``--tls-cert``), checked after the handshake and before the request is sent,
    as the Swift services check it. The key is the check there: no authority or name is consulted."""

    ca: str
    certificate: Optional[str] = None
    identity: Optional[str] = None

    @classmethod
    def from_environment(cls) -> Optional["Swarm"]:
        """``$HIVEMIND_SWARM_CA``, ``$HIVEMIND_SWARM_CERT`` and ``$HIVEMIND_IDENTITY``, as the services read them; None without a root."""
        ca = os.environ.get("HIVEMIND_SWARM_CA")
        return cls(ca, os.environ.get("HIVEMIND_SWARM_CERT"), os.environ.get("HIVEMIND_IDENTITY")) if ca else None

    def context(self, *, pinned: bool = False) -> ssl.SSLContext:
        """The TLS context of calls; ``pinned`` for a peer address, whose key is checked instead of the chain."""
        if bool(self.certificate) != bool(self.identity):
            raise ValueError("a swarm membership needs both the certificate and the identity key it admits")
        context = ssl.create_default_context(cafile=self.ca)
        context.check_hostname = False
        if pinned:
            context.verify_mode = ssl.CERT_NONE
        if self.certificate:
            context.load_cert_chain(self.certificate, self.identity)
        return context


class _SwarmAdapter(requests.adapters.HTTPAdapter):
    """HTTPS with a swarm's TLS context (no host names checked: the chain to the swarm's root is the check)."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self.context = context
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = self.context
        kwargs["assert_hostname"] = False
        super().init_poolmanager(*args, **kwargs)


#: A peer id where a URL's user name goes: checked against the server's certificate, never sent.
_PEER_ID = re.compile(r"^(https?://)([0-9A-Fa-f]{64})@([^/]+)")

#: Per peer, the key pins its identity card vouched for, and when its card was last asked for (at most once a
#: minute, as the Swift services ask); kept for MAX_PINNED_ORIGINS peers at most.
_VOUCHED: Dict[str, Set[str]] = {}
_ASKED: Dict[str, float] = {}
_VOUCHED_LOCK = threading.Lock()
#: The largest identity card read.
_MAX_CARD_BYTES = 64 << 10


class _PinnedConnection(urllib3.connection.HTTPSConnection):
    """A connection that, once its handshake is done and before a request is sent, checks that the
    server's certificate holds ``peer``'s key, or a key ``peer`` vouches for (set on a subclass per peer)."""

    peer = ""

    def connect(self) -> None:
        # The key is the check: no chain (requests would ask for one with the swarm's root), no name.
        self.cert_reqs, self.ca_certs = "CERT_NONE", None
        super().connect()
        certificate = self.sock.getpeercert(binary_form=True) or b""  # type: ignore[union-attr]
        key = certificate_key(certificate)
        if key == self.peer:
            self.is_verified = True
            return
        try:
            pin: Optional[str] = key_pin(certificate)
        except ValueError:
            pin = None
        with _VOUCHED_LOCK:
            known = pin in _VOUCHED.get(self.peer, set())
        if pin is not None and (known or self._vouches_for(pin)):
            self.is_verified = True
            return
        self.close()
        raise ssl.SSLError(f"the server's certificate holds {'the key ' + key if key else 'no Ed25519 key'}, "
                           f"not the peer {self.peer} its address names, and no card of that peer vouches for it")

    def _vouches_for(self, pin: str) -> bool:
        """Whether the peer's identity card, asked on a connection of its own (it checks nothing: the card is
        signed) within CONNECT_TIMEOUT, vouches for the key ``pin``; remembered if so."""
        with _VOUCHED_LOCK:
            asked = _ASKED.get(self.peer)
            if (asked is not None and time.monotonic() - asked < 60) or getattr(self, "_tunnel_host", None):
                return False  # asked lately, or behind a proxy (the card is asked for directly)
            if self.peer not in _ASKED and len(_ASKED) >= MAX_PINNED_ORIGINS:
                _ASKED.clear()
                _VOUCHED.clear()
            _ASKED[self.peer] = time.monotonic()
        deadline = time.monotonic() + CONNECT_TIMEOUT
        connection = http.client.HTTPSConnection(self.host, self.port, timeout=CONNECT_TIMEOUT, context=self.ssl_context)
        try:
            connection.request("GET", "/v1/identity")
            response = connection.getresponse()
            body = b""
            while len(body) <= _MAX_CARD_BYTES and time.monotonic() < deadline:
                chunk = response.read1(_MAX_CARD_BYTES + 1 - len(body))
                if not chunk:
                    break
                body += chunk
            complete = response.status == 200 and len(body) <= _MAX_CARD_BYTES and time.monotonic() < deadline
            card = jsonlib.loads(body) if complete else None
        except (OSError, ValueError, RecursionError, http.client.HTTPException):
            return False
        finally:
            connection.close()
        if vouched_pin(card, self.peer) != pin:
            return False
        with _VOUCHED_LOCK:
            _VOUCHED.setdefault(self.peer, set()).add(pin)
        return True


class _PinnedAdapter(_SwarmAdapter):
    """A swarm adapter for one peer address: its connections check the server's key (`_PinnedConnection`)."""

    def __init__(self, context: ssl.SSLContext, peer: str) -> None:
        connection = type("PinnedConnection", (_PinnedConnection,), {"peer": peer})
        self.pool = type("PinnedPool", (urllib3.HTTPSConnectionPool,), {"ConnectionCls": connection})
        super().__init__(context)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {**self.poolmanager.pool_classes_by_scheme, "https": self.pool}


@dataclass
class Transport:
    """Connection pools and limits shared by clients (one per process is enough); ``swarm`` to call a moderated TLS swarm."""

    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    swarm: Optional[Swarm] = None
    _local: threading.local = field(default_factory=threading.local, repr=False)

    def session(self) -> requests.Session:
        """This thread's session; a forked child makes its own rather than share the parent's sockets."""
        session = getattr(self._local, "session", None)
        if session is None or self._local.pid != os.getpid():
            session = requests.Session()
            if self.swarm is not None:
                session.verify = self.swarm.ca
                session.mount("https://", _SwarmAdapter(self.swarm.context()))
            self._local.session, self._local.pid, self._local.pinned = session, os.getpid(), {}
        return session

    def _pin(self, session: requests.Session, origin: str, peer: str) -> None:
        """Calls to ``origin`` (``https://host:port``) go through an adapter that checks ``peer``'s key."""
        pinned: Dict[str, str] = self._local.pinned
        if pinned.get(origin) != peer:
            assert self.swarm is not None
            if origin not in pinned and len(pinned) >= MAX_PINNED_ORIGINS:
                # Peer addresses come from records anyone can write: the adapters start over rather than pile up.
                for known in pinned:
                    session.adapters.pop(known + "/").close()
                pinned.clear()
            session.mount(origin + "/", _PinnedAdapter(self.swarm.context(pinned=True), peer))
            pinned[origin] = peer

    def send(self, method: str, url: str, *, timeout: float, params: Optional[Mapping[str, Any]] = None,
             json: Any = None, data: Optional[bytes] = None, headers: Optional[Mapping[str, str]] = None,
             ok: Iterable[int] = ()) -> Answer:
        """One request; raises :class:`MeshError` for no answer, a body over the cap, or an error status not in ``ok``."""
        session = self.session()
        pinned = _PEER_ID.match(url)
        url = _PEER_ID.sub(r"\1\3", url)
        if pinned and pinned.group(1) == "https://" and self.swarm is not None:
            self._pin(session, "https://" + pinned.group(3), pinned.group(2).lower())
        try:
            response = session.request(method, url, params=_query(params), json=json, data=data, headers=headers,
                                       timeout=(min(CONNECT_TIMEOUT, timeout), timeout), stream=True)
        except requests.Timeout as error:
            raise MeshError("timeout", f"no answer within {timeout} s: {error}", None, url) from None
        except requests.exceptions.SSLError as error:
            raise MeshError("untrusted", f"the server is not the one asked for: {error}", None, url) from None
        except requests.RequestException as error:
            raise MeshError("unreachable", str(error), None, url) from None
        try:
            body = self._read(response, url, timeout)
        finally:
            response.close()
        answer = Answer(response.status_code, response.headers, body, url)
        if response.status_code >= 400 and response.status_code not in set(ok):
            raise error_from(answer)
        return answer

    def _read(self, response: requests.Response, url: str, timeout: float) -> bytes:
        declared = response.headers.get("Content-Length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_response_bytes:
            raise MeshError("too_large", f"the answer has {declared} bytes, more than the cap of {self.max_response_bytes}",
                            response.status_code, url)
        chunks: List[bytes] = []
        total = 0
        try:
            for chunk in response.iter_content(chunk_size=1 << 20):
                total += len(chunk)
                if total > self.max_response_bytes:
                    raise MeshError("too_large", f"the answer exceeds the cap of {self.max_response_bytes} bytes",
                                    response.status_code, url)
                chunks.append(chunk)
        except requests.RequestException as error:
            raise MeshError("timeout" if isinstance(error, requests.Timeout) else "unreachable",
                            f"the answer broke off: {error}", None, url) from None
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def error_from(answer: Answer) -> MeshError:
    """The service's ``{"error": {"code", "message"}}`` as an exception (or the raw body if it sent none)."""
    try:
        error = jsonlib.loads(answer.body)["error"]
        return MeshError(str(error["code"]), str(error["message"]), answer.status, answer.url)
    except (ValueError, KeyError, TypeError):
        return MeshError(f"http_{answer.status}", answer.body[:500].decode("utf-8", "replace"), answer.status, answer.url)


def _query(params: Optional[Mapping[str, Any]]) -> Optional[Dict[str, str]]:
    """Query values as the services read them: booleans as true/false, None left out."""
    if params is None:
        return None
    result: Dict[str, str] = {}
    for key, value in params.items():
        if value is None:
            continue
        result[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return result


#: The transport clients use unless given their own (a swarm member when ``$HIVEMIND_SWARM_CA`` is set).
default_transport = Transport(swarm=Swarm.from_environment())


class ServiceClient:
    """What every client shares: replicas, failover, timeouts, and the health routes every service has."""

    def __init__(self, urls: URLs, *, timeout: float = 30.0, transport: Optional[Transport] = None) -> None:
        self.urls = split_urls(urls)
        self.timeout = timeout
        self.transport = transport or default_transport
        self._preferred = 0

    @property
    def url(self) -> str:
        """The replica that answered last."""
        return self.urls[self._preferred]

    def call(self, method: str, path: str, *, timeout: Optional[float] = None, ok: Iterable[int] = (), **kwargs: Any) -> Answer:
        """Sends to the preferred replica, then the others while the failure is retryable."""
        failures: List[str] = []
        order = [(self._preferred + offset) % len(self.urls) for offset in range(len(self.urls))]
        last: Optional[MeshError] = None
        for index in order:
            try:
                answer = self.transport.send(method, self.urls[index] + path, timeout=timeout or self.timeout, ok=ok, **kwargs)
            except MeshError as error:
                if not error.retryable:
                    raise
                failures.append(str(error))
                last = error
                continue
            self._preferred = index
            return answer
        assert last is not None
        if len(self.urls) == 1:
            raise last
        raise MeshError(last.code, "no replica answered: " + "; ".join(failures), last.status, last.url)

    def health(self) -> Dict[str, Any]:
        """``GET /healthz``: ``{"status": "ok"}`` while the service is up."""
        return self.call("GET", "/healthz", timeout=5).json()

    def ready(self) -> Tuple[bool, Dict[str, Any]]:
        """``GET /readyz``: whether it is ready, and each check's ``ok`` or reason."""
        answer = self.call("GET", "/readyz", timeout=5, ok=(503,))
        body = answer.json()
        return answer.status == 200, body.get("checks", {})

    def metrics(self) -> str:
        """``GET /metrics``: Prometheus text."""
        return self.call("GET", "/metrics", timeout=10).body.decode("utf-8")
