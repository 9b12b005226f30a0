"""Generates a Python client from the OpenAPI document a live service serves,
with openapi-python-client, as a user in another language would, and calls
every operation of the service through it.

    python3 generated_clients.py dht URL
    python3 generated_clients.py expert-host URL --uids ffn.0.0,ffn.0.1 --width 4 --token SECRET
    python3 generated_clients.py averager URL --peer URL2
    python3 generated_clients.py gateway URL --uids ffn.0.0,ffn.0.1 --width 4

Each call must answer with the status the scenario expects and a body that
parses into the generated model (and back into the same JSON). It prints the
operations called, and exits 1 at the first call that goes otherwise, when the
document does not validate, when generation warns, or when an operation of
the document was not called.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib
import io
import json
import pkgutil
import re
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

import numpy as np
import openapi_spec_validator
import safetensors.numpy
import yaml


class Failure(Exception):
    """A call, a document or a generated client that is not what it should be."""


def snake(identifier: str) -> str:
    """An operationId as the generator names its module: getRecord -> get_record."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", identifier).lower()


@dataclass
class Session:
    """A generated client of one live service, and the calls made with it."""

    url: str
    package: ModuleType
    document: dict[str, Any]
    client: Any
    calls: list[str] = field(default_factory=list)

    @property
    def api(self) -> Any:
        return self.package.api

    @property
    def models(self) -> Any:
        return self.package.models

    def call(self, operation: ModuleType, status: int, parsed_type: type | tuple[type, ...],
             client: Any = None, **arguments: Any) -> Any:
        """Calls `operation` and checks the status and the parsed body; returns the response."""
        name = operation.__name__.rsplit(".", 1)[-1]
        try:
            response = operation.sync_detailed(client=client or self.client, **arguments)
        except self.package.errors.UnexpectedStatus as error:
            raise Failure(f"{name}: status {error.status_code} is not in the document: {error.content[:400]!r}") from error
        except (KeyError, TypeError, ValueError) as error:
            raise Failure(f"{name}: the body does not parse into the generated model: {error!r}") from error
        if response.status_code != status:
            raise Failure(f"{name}: expected {status}, got {int(response.status_code)}: {response.content[:400]!r}")
        parsed = response.parsed
        if not isinstance(parsed, parsed_type):
            raise Failure(f"{name}: the {status} body parsed into {type(parsed).__name__}, expected {parsed_type}")
        if hasattr(parsed, "to_dict") and parsed.to_dict() != json.loads(response.content):
            raise Failure(f"{name}: the model does not give back the body:\n  {parsed.to_dict()}\n  {json.loads(response.content)}")
        self.calls.append(f"{name} -> {int(response.status_code)} {type(parsed).__name__}")
        return response

    def error(self, operation: ModuleType, status: int, code: str, **arguments: Any) -> None:
        """Calls `operation` expecting an error body with `code`, parsed into the generated Error."""
        parsed = self.call(operation, status, self.models.Error, **arguments).parsed
        if parsed.error.code != code:
            raise Failure(f"{operation.__name__}: expected error code {code}, got {parsed.error.code}: {parsed.error.message}")

    def operations(self) -> set[str]:
        """The generated client's operations (one module per operation)."""
        return {name for tag in pkgutil.iter_modules(self.api.__path__)
                for _, name, _ in pkgutil.iter_modules([str(Path(self.api.__path__[0]) / tag.name)])}


def open_session(url: str, work: Path) -> Session:
    """Fetches and validates the served document, generates a client from its
    URL and imports all of it."""
    with urllib.request.urlopen(f"{url}/openapi.json", timeout=10) as response:
        document = json.load(response)
    try:
        openapi_spec_validator.validate(document)
    except Exception as error:
        raise Failure(f"{url}/openapi.json is not a valid OpenAPI document: {error}") from error
    with urllib.request.urlopen(f"{url}/openapi.yaml", timeout=10) as response:
        if yaml.safe_load(response.read()) != document:
            raise Failure("/openapi.yaml is not the document /openapi.json is")
    output = work / "hivemind_client"
    generation = subprocess.run(
        ["openapi-python-client", "generate", "--url", f"{url}/openapi.json", "--meta", "none",
         "--output-path", str(output), "--fail-on-warning"],
        capture_output=True, text=True, timeout=300)
    if generation.returncode != 0:
        raise Failure(f"openapi-python-client failed on {url}/openapi.json:\n{generation.stdout}{generation.stderr}")
    sys.path.insert(0, str(work))
    package = importlib.import_module("hivemind_client")
    for module in pkgutil.walk_packages(package.__path__, "hivemind_client."):
        importlib.import_module(module.name)
    session = Session(url, package, document, package.Client(base_url=url, raise_on_unexpected_status=True, timeout=60))
    documented = {snake(operation["operationId"]) for item in document["paths"].values()
                  for operation in item.values() if isinstance(operation, dict) and "operationId" in operation}
    if session.operations() != documented:
        raise Failure(f"the client has operations {sorted(session.operations())}, the document {sorted(documented)}")
    return session


# Safetensors bodies, with the stock library.

def tensors_file(session: Session, tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> Any:
    return session.package.types.File(payload=io.BytesIO(safetensors.numpy.save(tensors, metadata=metadata)))


def read_tensors(file: Any) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    data = file.payload.read()
    length = struct.unpack("<Q", data[:8])[0]
    metadata = json.loads(data[8:8 + length]).get("__metadata__", {})
    return safetensors.numpy.load(data), metadata


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise Failure(message)


# What every service answers.

def service_operations(s: Session, metric_prefix: str) -> None:
    api, models = s.api.service, s.models
    s.call(api.health, 200, models.Health)
    s.call(api.readiness, 200, models.Ready)
    metrics = s.call(api.metrics, 200, str).parsed
    expect(metric_prefix in metrics, f"metrics: no {metric_prefix} metric in {metrics[:200]!r}")
    served = s.call(api.openapi_json, 200, models.OpenAPIDocument).parsed
    expect(served.to_dict() == s.document, "openapi_json: not the document the client was generated from")
    expect(yaml.safe_load(s.call(api.openapi_yaml, 200, str).parsed) == s.document, "openapi_yaml: another document")
    card = s.call(api.identity, 200, models.IdentityCard).parsed
    expect(len(card.peer_id) == 64 and card.tls is None and card.membership is None, f"identity: {card}")


# One scenario per service.

def dht(s: Session, _: argparse.Namespace) -> None:
    api, models = s.api, s.models
    service_operations(s, "hivemind_dht_")
    soon = time.time() + 600
    value = {"url": "http://127.0.0.1:9", "experts": [1, 2]}
    stored = s.call(api.records.store_record, 200, models.StoreResult, key="client-test",
                    body=models.RecordBody(value=value, expiration_time=soon, subkey="host-1")).parsed
    expect(stored.stored and stored.replicas == 1, f"store_record: {stored}")
    entry = s.call(api.records.get_record, 200, models.DictionaryEntry, key="client-test", latest=True).parsed
    expect(entry.subkeys["host-1"].value == value, f"get_record: {entry}")
    records = [models.Record(key="client/with/slashes", value=[1, 2, 3], expiration_time=soon)]
    results = s.call(api.records.store_records, 200, models.StoreRecordsResponse,
                     body=models.StoreRecordsRequest(records=records)).parsed.results
    expect([result.stored for result in results] == [True], f"store_records: {results}")
    found = s.call(api.records.get_records, 200, models.GetRecordsResponse,
                   body=models.GetRecordsRequest(keys=["client/with/slashes", "never-stored"])).parsed.results
    expect(isinstance(found[0], models.ValueEntry) and found[0].value == [1, 2, 3] and found[1] is None,
           f"get_records: {found}")
    node = s.call(api.node.get_node, 200, models.NodeInfo).parsed
    expect(node.records == 2 and not node.client_mode, f"get_node: {node}")
    pong = s.call(api.peer.ping, 200, models.PingResponse, body=models.PingRequest()).parsed
    expect(pong.peer.node_id == node.node_id, f"ping: {pong}")
    peer_record = models.PeerStoreRecord(key="client-peer", value="v", expiration_time=soon)
    accepted = s.call(api.peer.peer_store, 200, models.PeerStoreResponse,
                      body=models.PeerStoreRequest(records=[peer_record])).parsed
    expect(accepted.results == [True], f"peer_store: {accepted}")
    key_id = hashlib.sha1(b"client-peer").hexdigest()
    found_by_id = s.call(api.peer.peer_find, 200, models.PeerFindResponse,
                         body=models.PeerFindRequest(ids=[key_id])).parsed.results[0]
    expect(isinstance(found_by_id.entry, models.ValueEntry) and found_by_id.entry.value == "v", f"peer_find: {found_by_id}")
    # The node calls itself back (loopback, where it listens); as a relay (--relay) it registers a service.
    reach = s.call(api.node.check_reachability, 200, models.Reachability, body=models.ReachabilityRequest(url=s.url)).parsed
    expect(reach.reachable and reach.checked, f"check_reachability: {reach}")
    relayed = s.call(api.relay.register_relayed_service, 201, models.RelaySession,
                     body=models.RelaySessionRequest(scheme=models.RelaySessionRequestScheme.HTTP)).parsed
    expect(relayed.url.startswith("http://") and ":" in relayed.tunnel, f"register_relayed_service: {relayed}")
    streams = s.call(api.relay.poll_relayed_streams, 200, models.RelayStreams, id=relayed.id,
                     authorization=f"Bearer {relayed.secret}", wait=0).parsed
    expect(streams.streams == [], f"poll_relayed_streams: {streams}")
    s.call(api.relay.poll_relayed_streams, 401, models.Error, id=relayed.id, authorization="Bearer not-the-secret")
    s.error(api.records.get_record, 404, "not_found", key="never-stored")
    s.error(api.records.store_record, 422, "unprocessable", key="client-test",
            body=models.RecordBody(value=1, expiration_time=time.time() - 60))


def expert_host(s: Session, options: argparse.Namespace) -> None:
    api, models = s.api, s.models
    service_operations(s, "hivemind_expert_host_")
    uids = options.uids.split(",")
    listed = s.call(api.experts.list_experts, 200, models.ExpertList).parsed
    expect(sorted(expert.uid for expert in listed.experts) == sorted(uids), f"list_experts: {listed}")
    expert = s.call(api.experts.get_expert, 200, models.ExpertInfo, uid=uids[0]).parsed
    expect(expert.schema.inputs[0].shape == [-1, options.width], f"get_expert: {expert}")
    authorized = s.package.AuthenticatedClient(base_url=s.url, token=options.token, raise_on_unexpected_status=True)
    x = np.linspace(-1, 1, 3 * options.width, dtype=np.float32).reshape(3, options.width)
    output = s.call(api.experts.forward, 200, s.package.types.File, client=authorized, uid=uids[0],
                    body=tensors_file(s, {"input.0": x})).parsed
    expect(read_tensors(output)[0]["output.0"].shape == x.shape, "forward: output.0 is not shaped like the input")
    gradients = s.call(api.experts.backward, 200, s.package.types.File, client=authorized, uid=uids[0],
                       body=tensors_file(s, {"input.0": x, "grad_output.0": np.ones_like(x)})).parsed
    expect(read_tensors(gradients)[0]["grad_input.0"].shape == x.shape, "backward: grad_input.0 is not shaped like the input")
    state = s.call(api.experts.get_expert_state, 200, s.package.types.File, client=authorized, uid=uids[0]).parsed
    expect(len(read_tensors(state)[0]) > 0, "get_expert_state: no tensors")
    checkpointed = s.call(api.experts.checkpoint, 200, models.Checkpointed, client=authorized).parsed
    expect(sorted(checkpointed.experts) == sorted(uids), f"checkpoint: {checkpointed}")
    s.error(api.experts.get_expert, 404, "not_found", uid="ffn.99.99")
    s.error(api.experts.forward, 401, "unauthorized", uid=uids[0], body=tensors_file(s, {"input.0": x}))
    s.error(api.experts.forward, 400, "bad_request", client=authorized, uid=uids[0],
            body=s.package.types.File(payload=io.BytesIO(b"not a safetensors file")))


def averager(s: Session, options: argparse.Namespace) -> None:
    api, models = s.api, s.models
    service_operations(s, "hivemind_averager_")
    peer = s.package.Client(base_url=options.peer, raise_on_unexpected_status=True, timeout=60)
    mine, theirs = np.arange(6, dtype=np.float32).reshape(2, 3), np.full((2, 3), 10, dtype=np.float32)
    mean = (mine + theirs) / 2

    def both(operation: ModuleType, status: int, parsed_type: type, **arguments: Any) -> list[Any]:
        """The same call on this averager and its peer at once, with our tensors and theirs."""
        with ThreadPoolExecutor(2) as pool:
            calls = [pool.submit(s.call, operation, status, parsed_type, client=client,
                                 body=tensors_file(s, {"w": tensors}), **arguments)
                     for client, tensors in ((s.client, mine), (peer, theirs))]
            return [call.result() for call in calls]

    averaged = both(api.averaging.average, 200, s.package.types.File, prefix="client_avg", timeout=20)[0].parsed
    tensors, metadata = read_tensors(averaged)
    expect(np.allclose(tensors["w"], mean), f"average: {tensors['w']}, expected {mean}")
    expect(json.loads(metadata["round"])["outcome"] == "complete", f"average: {metadata}")
    scheduled = both(api.averaging.schedule_round, 202, models.ScheduledRound, prefix="client_bg", timeout=20)[0].parsed
    status = s.call(api.averaging.round_status, 200, models.RoundStatus, id=scheduled.id, wait=30).parsed
    expect(status.status == "done" and status.round_.outcome == "complete", f"round_status: {status}")
    round_tensors = s.call(api.averaging.round_tensors, 200, s.package.types.File, id=scheduled.id).parsed
    expect(np.allclose(read_tensors(round_tensors)[0]["w"], mean), "round_tensors: not the average")
    info = s.call(api.averaging.info, 200, models.AveragerInfo).parsed
    peer_id = s.call(s.api.service.identity, 200, models.IdentityCard).parsed.peer_id
    pinned = s.url.replace("://", f"://{peer_id}@", 1)
    expect(info.peer_id == peer_id and info.address == pinned and "client_avg" in info.group_keys.to_dict(), f"info: {info}")

    settings = models.RunSettings(target_batch_size=4, averaging_timeout=2)
    s.call(api.runs.configure_run, 201, models.Run, run="client_run", body=settings)
    s.call(api.runs.configure_run, 200, models.Run, run="client_run", body=settings)
    answer = s.call(api.runs.report_progress, 200, models.ProgressAnswer, run="client_run",
                    body=models.ProgressReport(trainer="alice", epoch=0, samples=8, samples_per_second=100.0)).parsed
    expect(answer.action == "step", f"report_progress: {answer}")
    run = s.call(api.runs.get_run, 200, models.Run, run="client_run").parsed
    expect("alice" in run.trainers.to_dict(), f"get_run: {run}")
    stepped = s.call(api.runs.step, 200, s.package.types.File, run="client_run", trainer="alice", epoch=0, samples=8,
                      body=tensors_file(s, {"w": mine}))
    expect(stepped.headers["X-Hivemind-Epoch"] == "1", f"step: epoch {stepped.headers.get('X-Hivemind-Epoch')}")
    expect(np.allclose(read_tensors(stepped.parsed)[0]["w"], mine), "step: alone, the average is its own tensors")
    left = s.call(api.runs.leave_run, 200, models.LeftRun, run="client_run", trainer="alice").parsed
    expect(left.left, f"leave_run: {left}")

    state = safetensors.numpy.save({"w": mine})
    shared = s.call(api.state.put_state, 200, models.SharedState, prefix="client_state", priority=1.0,
                    body=s.package.types.File(payload=io.BytesIO(state))).parsed
    expect(shared.bytes_ == len(state), f"put_state: {shared}")
    whole = s.call(api.state.get_state, 200, s.package.types.File, prefix="client_state").parsed
    expect(whole.payload.read() == state, "get_state: not the bytes put")
    head = s.call(api.state.get_state, 206, s.package.types.File, prefix="client_state", range_="bytes=0-7").parsed
    expect(head.payload.read() == state[:8], "get_state: not the range asked for")
    loaded = s.call(api.state.load_state, 200, s.package.types.File, client=peer, prefix="client_state", timeout=20).parsed
    expect(loaded.payload.read() == state, "load_state: the peer did not load the donor's bytes")

    # The peer RPCs outside a round (a round between averagers uses them all):
    # nobody is looking for a group, so a join is refused and a wait or a leave ends disbanded.
    join = models.JoinRequest(peer="http://127.0.0.1:9", schema_hash="0123456789abcdef", expiration=time.time() + 5,
                              client_mode=False, group_key="client_avg.0b",
                              gather=models.JoinRequestGather(mode=models.Mode.NODE))
    refused = s.call(api.peer.join_group, 200, models.JoinAnswer, body=join).parsed
    expect(refused.reason == models.JoinAnswerReason.NOT_LOOKING_FOR_GROUP, f"join_group: {refused}")
    waited = s.call(api.peer.await_group, 200, models.GroupOutcome,
                    body=models.AwaitRequest(peer="http://127.0.0.1:9", group_key="client_avg.0b")).parsed
    expect(waited.status == models.GroupOutcomeStatus.GROUP_DISBANDED, f"await_group: {waited}")
    given_up = s.call(api.peer.leave_group, 200, models.GroupOutcome,
                      body=models.LeaveRequest(peer="http://127.0.0.1:9", group_key="client_avg.0b",
                                               expiration=join.expiration)).parsed
    expect(given_up.status == models.GroupOutcomeStatus.GROUP_DISBANDED, f"leave_group: {given_up}")
    part = tensors_file(s, {"part": mine.ravel()}, {"sender": "http://127.0.0.1:9", "weight": "1", "accept": "none"})
    s.error(api.peer.reduce_part, 404, "unknown_group", group_id="no-such-group", part=0, body=part)
    s.error(api.runs.get_run, 404, "not_found", run="never_configured")
    s.error(api.averaging.average, 400, "bad_request", prefix="client_avg",
            body=s.package.types.File(payload=io.BytesIO(b"not a safetensors file")))


def gateway(s: Session, options: argparse.Namespace) -> None:
    api, models = s.api, s.models
    service_operations(s, "hivemind_gateway_")
    uids = options.uids.split(",")
    grid = ",".join(str(max(int(uid.split(".")[d + 1]) for uid in uids) + 1) for d in range(len(uids[0].split(".")) - 1))
    columns = sum(int(size) for size in grid.split(","))
    x = np.linspace(-1, 1, 3 * options.width, dtype=np.float32).reshape(3, options.width)
    scores = np.linspace(1, -1, 3 * columns, dtype=np.float32).reshape(3, columns)

    alive = s.call(api.experts.list_experts, 200, models.AliveExperts, prefix="ffn.").parsed
    expect(sorted(expert.uid for expert in alive.experts) == sorted(uids), f"list_experts: {alive}")
    mixed = s.call(api.moe.moe_forward, 200, s.package.types.File, prefix="ffn.", grid=grid, k_best=2,
                   body=tensors_file(s, {"x": x, "scores": scores})).parsed
    output, metadata = read_tensors(mixed)
    expect(output["output"].shape == x.shape and len(json.loads(metadata["routing"])) == 3, f"moe_forward: {metadata}")
    backward = s.call(api.moe.moe_backward, 200, s.package.types.File, prefix="ffn.", grid=grid, k_best=2,
                      body=tensors_file(s, {"x": x, "grad_output": np.ones_like(x)}, metadata)).parsed
    grads = read_tensors(backward)[0]
    expect(grads["grad_x"].shape == x.shape and grads["grad_scores"].shape == scores.shape, "moe_backward: shapes")
    switched = s.call(api.moe.switch_forward, 200, s.package.types.File, prefix="ffn.", grid=grid,
                      body=tensors_file(s, {"x": x, "scores": scores})).parsed
    switch_output, switch_metadata = read_tensors(switched)
    expect(switch_output["utilization"].shape == (columns,), f"switch_forward: {switch_output.keys()}")
    switch_backward = s.call(api.moe.switch_backward, 200, s.package.types.File, prefix="ffn.", grid=grid,
                             body=tensors_file(s, {"x": x, "scores": scores, "grad_output": np.ones_like(x),
                                                   "utilization": switch_output["utilization"]}, switch_metadata)).parsed
    expect(read_tensors(switch_backward)[0]["grad_scores"].shape == scores.shape, "switch_backward: grad_scores shape")
    proxied = s.call(api.experts.proxy_forward, 200, s.package.types.File, uid=uids[0],
                     body=tensors_file(s, {"input.0": x})).parsed
    expect(read_tensors(proxied)[0]["output.0"].shape == x.shape, "proxy_forward: output.0 shape")
    s.call(api.experts.proxy_backward, 200, s.package.types.File, uid=uids[0],
           body=tensors_file(s, {"input.0": x, "grad_output.0": np.ones_like(x)}))
    snapshot = s.call(api.mesh.mesh_snapshot, 200, models.MeshSnapshot, prefix="ffn.", grid=grid).parsed
    expect(len(snapshot.experts.experts) == len(uids) and all(expert.alive for expert in snapshot.experts.experts),
           f"mesh_snapshot: {snapshot.experts}")
    page = s.call(api.mesh.dashboard, 200, str).parsed
    expect("<html" in page.lower(), "dashboard: no HTML page")
    s.error(api.experts.list_experts, 400, "bad_request", prefix="no-dot")
    s.error(api.experts.proxy_forward, 404, "not_found", uid="ffn.99.99", body=tensors_file(s, {"input.0": x}))


SCENARIOS: dict[str, Callable[[Session, argparse.Namespace], None]] = {
    "dht": dht, "expert-host": expert_host, "averager": averager, "gateway": gateway,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("service", choices=sorted(SCENARIOS))
    parser.add_argument("url")
    parser.add_argument("--peer", help="averager: another averager of the same DHT")
    parser.add_argument("--uids", help="expert host and gateway: the served experts, comma-separated")
    parser.add_argument("--width", type=int, help="expert host and gateway: the experts' hidden size")
    parser.add_argument("--token", help="expert host: its --forward-token and --backward-token")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hivemind-client-") as work:
        try:
            session = open_session(options.url, Path(work))
            SCENARIOS[options.service](session, options)
            missing = session.operations() - {call.split(" ")[0] for call in session.calls}
            if missing:
                raise Failure(f"operations not called: {sorted(missing)}")
        except Failure as failure:
            print(f"{options.service}: {failure}", file=sys.stderr)
            return 1
    called = sorted({call.split(" ")[0] for call in session.calls})
    print(f"{options.service}: {len(called)} operations called through the generated client, {len(session.calls)} calls:")
    for call in session.calls:
        print(f"  {call}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
