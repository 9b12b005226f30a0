"""An averager's API (openapi/averager.yaml): averaging rounds, shared state, and collaborative runs."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Tuple, Union

import numpy as np

from .codecs import check_codec, decode_bundle, encode_bundle
from .transport import OCTETS, ServiceClient

HEADERS = {"Content-Type": OCTETS}
Tensors = Mapping[str, np.ndarray]
#: Seconds an HTTP call may take beyond the time the averager is told to look for a group (its all-reduce comes on top).
ALLREDUCE_MARGIN = 40.0


@dataclass
class StepResult:
    """What ``POST /v1/runs/{run}/step`` answers."""

    tensors: Dict[str, np.ndarray]
    #: The epoch the trainer is in now.
    epoch: int
    #: ``{"epoch", "previous_epoch", "outcome": "averaged"|"local", "group_size", "trainers", "samples"}``.
    record: Dict[str, Any]

    @property
    def averaged(self) -> bool:
        """True if other averagers' trainers took part."""
        return self.record.get("outcome") == "averaged"


class AveragerClient(ServiceClient):
    """Calls one ``hivemind-averager`` (a trainer's own: the run's state lives there, so there is no failover between averagers)."""

    # ---- averaging ----

    def average(self, tensors: Tensors, prefix: str, *, weight: float = 1.0, timeout: Optional[float] = None,
                codec: str = "none", gather: Any = None) -> Tuple[Dict[str, np.ndarray], Dict[str, Any]]:
        """Averages the tensors with a group of peers of ``prefix``; the average and the round's record.

        ``gather`` is any JSON every member of the group receives (in the record's members).
        """
        answer = self.call("POST", "/v1/average", data=_body(tensors, gather), headers=HEADERS, timeout=(timeout or 30) + ALLREDUCE_MARGIN,
                           params={"prefix": prefix, "weight": weight, "timeout": timeout, "codec": check_codec(codec)})
        result, metadata = decode_bundle(answer.body)
        return result, json.loads(metadata.get("round", "{}"))

    def schedule_round(self, tensors: Tensors, prefix: str, *, weight: float = 1.0, timeout: Optional[float] = None,
                       codec: str = "none", gather: Any = None) -> str:
        """Starts a round and returns its id at once (poll with :meth:`round_status`)."""
        return self.call("POST", "/v1/rounds", data=_body(tensors, gather), headers=HEADERS,
                         params={"prefix": prefix, "weight": weight, "timeout": timeout, "codec": check_codec(codec)}).json()["id"]

    def round_status(self, round_id: str, *, wait: float = 0) -> Dict[str, Any]:
        """``running``, ``done`` (with ``round``) or ``failed`` (with ``error``), waiting up to ``wait`` seconds."""
        return self.call("GET", f"/v1/rounds/{round_id}", params={"wait": wait}, timeout=wait + 10).json()

    def round_tensors(self, round_id: str) -> Tuple[Dict[str, np.ndarray], Dict[str, Any]]:
        """A finished round's average and record."""
        result, metadata = decode_bundle(self.call("GET", f"/v1/rounds/{round_id}/tensors").body)
        return result, json.loads(metadata.get("round", "{}"))

    def info(self) -> Dict[str, Any]:
        """Peer id, mode and the current group key of each prefix."""
        return self.call("GET", "/v1/info").json()

    # ---- shared state ----

    def share_state(self, state: Union[bytes, Tensors], prefix: str, *, priority: float = 0) -> Dict[str, Any]:
        """Offers a state (a safetensors file or tensors) to newcomers under ``prefix``; they prefer higher priorities."""
        body = state if isinstance(state, (bytes, bytearray)) else encode_bundle(state)
        return self.call("PUT", "/v1/state", data=body, headers=HEADERS, params={"prefix": prefix, "priority": priority}).json()

    def load_state(self, prefix: str, *, timeout: float = 30, codec: str = "none") -> Optional[Tuple[bytes, str]]:
        """The latest state a donor shares and the donor; None if nobody shares one.

        The bytes are the donor's exactly, unless a ``codec`` compressed its float32 tensors of 1024 values or more
        on the way (then those are within the codec's error, and the file is float32 as it was).
        """
        answer = self.call("POST", "/v1/state/load", params={"prefix": prefix, "timeout": timeout, "codec": check_codec(codec)},
                           timeout=timeout + 15, ok=(404,))
        return None if answer.status == 404 else (answer.body, answer.headers.get("X-Hivemind-Donor", ""))

    def state(self, prefix: str) -> bytes:
        """This averager's own shared state under ``prefix`` (``GET /v1/state``)."""
        return self.call("GET", "/v1/state", params={"prefix": prefix}).body

    # ---- collaborative runs (the reference's hivemind.Optimizer, served by the averager) ----

    def configure_run(self, run: str, target_batch_size: int, *, averaging_timeout: Optional[float] = None,
                      metadata_expiration: Optional[float] = None, min_refresh_period: Optional[float] = None,
                      max_refresh_period: Optional[float] = None) -> Dict[str, Any]:
        """``PUT /v1/runs/{run}`` (idempotent: every trainer puts the same settings)."""
        settings = {"target_batch_size": target_batch_size, "averaging_timeout": averaging_timeout, "metadata_expiration": metadata_expiration,
                    "min_refresh_period": min_refresh_period, "max_refresh_period": max_refresh_period}
        return self.call("PUT", f"/v1/runs/{run}", json={k: v for k, v in settings.items() if v is not None}).json()

    def run(self, run: str) -> Dict[str, Any]:
        """The run's settings, progress and this averager's trainers."""
        return self.call("GET", f"/v1/runs/{run}").json()

    def report_progress(self, run: str, trainer: str, epoch: int, samples: int, *, samples_per_second: float = 0.0,
                        loss: Optional[float] = None) -> Dict[str, Any]:
        """The samples accumulated in the trainer's epoch; the answer's ``action`` is ``accumulate``, ``step`` or ``load_state``."""
        return self.call("POST", f"/v1/runs/{run}/progress", timeout=10, json={
            "trainer": trainer, "epoch": epoch, "samples": samples, "samples_per_second": samples_per_second, "loss": loss}).json()

    def step(self, run: str, trainer: str, epoch: int, samples: int, tensors: Tensors, *, codec: str = "none",
             averaging_timeout: float = 30.0) -> StepResult:
        """Ends the trainer's epoch: the samples-weighted average of the run's tensors and the new epoch.

        With a codec the tensors travel compressed to the averager and between the run's averagers.
        """
        answer = self.call("POST", f"/v1/runs/{run}/step", data=encode_bundle(tensors, codec=check_codec(codec)), headers=HEADERS,
                           params={"trainer": trainer, "epoch": epoch, "samples": samples, "codec": codec},
                           timeout=averaging_timeout + ALLREDUCE_MARGIN)
        result, metadata = decode_bundle(answer.body)
        record = json.loads(metadata.get("step", "{}"))
        return StepResult(result, int(record.get("epoch", answer.headers.get("X-Hivemind-Epoch", epoch + 1))), record)

    def leave_run(self, run: str, trainer: str) -> None:
        """The trainer leaves; others stop counting on its samples."""
        self.call("DELETE", f"/v1/runs/{run}/trainers/{trainer}", ok=(404,))


def _body(tensors: Tensors, gather: Any) -> bytes:
    return encode_bundle(tensors, {"gather": json.dumps(gather)} if gather is not None else None)

