# Schemathesis hooks for the conformance tests (the test names this file in SCHEMATHESIS_HOOKS).
# They change generated requests only where a schema cannot say what a valid
# request is, and keep the tests' traffic on loopback.
import json
import os
import struct
import time

import schemathesis

# A DHT node calls back the peers that requests name (`peer.address`): with a
# generated address such as http://some-random-host it would resolve and call
# hosts outside the test. Every http(s) address is pointed at 127.0.0.1:9,
# where nothing listens (the call is refused at once); other strings stay as
# generated, and the node must refuse them with a 400.
LOOPBACK_NOBODY = "http://127.0.0.1:9"


def _rewrite(value, positive):
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "address" and isinstance(item, str) and item.lower().startswith(("http://", "https://")):
                value[key] = LOOPBACK_NOBODY
            elif key == "expiration_time" and positive and isinstance(item, (int, float)) and not isinstance(item, bool):
                # "Not yet past" depends on the clock, which a schema cannot say:
                # a valid record expires in the future (a past one gets 422).
                value[key] = time.time() + 600
            else:
                _rewrite(item, positive)
    elif isinstance(value, list):
        for item in value:
            _rewrite(item, positive)


# Generated uids almost never name a served expert, so every call would end in
# a 404 before the expert's own checks. HIVEMIND_TEST_UIDS (comma-separated)
# lists served experts; half of the valid uids are swapped for one of them.
SERVED_UIDS = [uid for uid in os.environ.get("HIVEMIND_TEST_UIDS", "").split(",") if uid]


# An expert's forward and backward take safetensors files, which a schema
# cannot describe ("any bytes"): valid requests carry a real one, with
# `input.0` (and `grad_output.0`) of [batch, HIVEMIND_TEST_WIDTH] floats.
WIDTH = int(os.environ.get("HIVEMIND_TEST_WIDTH") or 0)


def _safetensors(tensors):
    """A safetensors file of F32 tensors: {name: (shape, values)}."""
    header, data = {}, b""
    for name, (shape, values) in tensors.items():
        chunk = struct.pack(f"<{len(values)}f", *values)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [len(data), len(data) + len(chunk)]}
        data += chunk
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def _expert_call(case, seed):
    batch = seed % 3 + 1
    values = [((seed * 7 + index * 13) % 17 - 8) / 8 for index in range(batch * WIDTH)]
    tensors = {"input.0": ([batch, WIDTH], values)}
    if case.path.endswith("/backward"):
        tensors["grad_output.0"] = ([batch, WIDTH], list(reversed(values)))
    return _safetensors(tensors)


def _served_grid():
    """The served experts' name prefix and grid, e.g. ("ffn.", [2, 2]) for ffn.0.0 ... ffn.1.1."""
    if not SERVED_UIDS:
        return None
    parts = [uid.split(".") for uid in SERVED_UIDS]
    sizes = [max(int(part[d + 1]) for part in parts) + 1 for d in range(len(parts[0]) - 1)]
    return parts[0][0] + ".", sizes


def _mixture_forward(case, seed):
    """A gateway forward: half the valid calls go to the served grid, all get
    `x` [batch, WIDTH] and `scores` [batch, sum(grid)] for the grid they name."""
    query = case.query if case.query is not None else {}
    served = _served_grid()
    if served and len(str(query.get("prefix", ""))) % 2 == 0:
        query["prefix"], query["grid"] = served[0], ",".join(map(str, served[1]))
        case.query = query
    try:
        columns = sum(int(size) for size in str(query.get("grid", "")).split(","))
    except ValueError:
        return None
    if columns > 4096:
        return None
    batch = seed % 3 + 1
    x = [((seed + index * 5) % 11 - 5) / 5 for index in range(batch * WIDTH)]
    scores = [((seed + index * 3) % 7 - 3) / 3 for index in range(batch * columns)]
    return _safetensors({"x": ([batch, WIDTH], x), "scores": ([batch, columns], scores)})


@schemathesis.hook
def before_call(context, case, kwargs):
    positive = case.meta is not None and case.meta.generation.mode.is_positive
    _rewrite(case.body, positive)
    uid = (case.path_parameters or {}).get("uid")
    if positive and SERVED_UIDS and isinstance(uid, str) and len(uid) % 2 == 0:
        case.path_parameters["uid"] = SERVED_UIDS[len(uid) % len(SERVED_UIDS)]
    if positive and WIDTH and case.path in ("/v1/experts/{uid}/forward", "/v1/experts/{uid}/backward"):
        case.body = _expert_call(case, len(case.body or b"") + len(str(uid)))
    if positive and WIDTH and case.path in ("/v1/moe/forward", "/v1/moe/switch/forward"):
        body = _mixture_forward(case, len(case.body or b""))
        if body is not None:
            case.body = body
