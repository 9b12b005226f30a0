#!/usr/bin/env python3
"""Bundles each service's OpenAPI document into one self-contained document.

The sources are `openapi/<service>.yaml` and the parts every service shares,
`openapi/common.yaml`. Client generators rarely follow a `$ref` into another
file, so each service serves (`GET /openapi.json`, `GET /openapi.yaml`) a
bundle in which what it takes from common.yaml is copied in: a component under
the same name, a path item inline. Bundling is only that; the sources
themselves carry what generators need, which `problems` checks.

    python3 openapi/bundle.py           # writes the generated Swift sources (`make openapi`)
    python3 openapi/bundle.py --check   # fails if they differ from the sources (a test runs this)
    python3 openapi/bundle.py --print dht [--json]   # one bundle on standard output
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import Any

import yaml

FOLDER = Path(__file__).resolve().parent
ROOT = FOLDER.parent
COMMON = "common.yaml"
REGENERATE = "make openapi"

# Each service's document, and the Swift source that embeds its bundle for the
# service's binary (containers have no checkout to read it from).
SERVICES: dict[str, tuple[str, str]] = {
    "dht": ("Services/DHTNode/Sources/Service/APIDocument+DHT.swift", "dht"),
    "expert-host": ("Services/ExpertHost/Sources/APIDocument+ExpertHost.swift", "expertHost"),
    "averager": ("Services/Averager/Sources/Service/APIDocument+Averager.swift", "averager"),
    "gateway": ("Services/Gateway/Sources/APIDocument+Gateway.swift", "gateway"),
}

Document = dict[str, Any]


class BundleError(Exception):
    """A source that cannot be bundled, or a bundle generators cannot use."""


def load(name: str) -> Document:
    with open(FOLDER / name, encoding="utf-8") as file:
        document = yaml.safe_load(file)
    if not isinstance(document, dict):
        raise BundleError(f"openapi/{name}: expected a YAML mapping at the top")
    return document


def pointer(document: Document, path: str, where: str) -> Any:
    """The value at a JSON pointer such as `/components/schemas/Error`."""
    value: Any = document
    for token in path.lstrip("/").split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        if not isinstance(value, dict) or token not in value:
            raise BundleError(f"{where}: nothing at '{path}'")
        value = value[token]
    return value


class Bundler:
    """Copies what a service document takes from common.yaml into it."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.common = load(COMMON)
        # Components taken from common.yaml, by kind and name.
        self.taken: dict[str, dict[str, Any]] = {}

    def bundle(self) -> Document:
        bundled: Document = self.resolve(load(f"{self.service}.yaml"), from_common=False)
        # The tags of the operations taken from common.yaml, after the service's own.
        tags = bundled.setdefault("tags", [])
        used = {tag for operation in operations(bundled) for tag in operation[2].get("tags", [])}
        for tag in self.common.get("tags", []):
            if tag["name"] in used and all(own["name"] != tag["name"] for own in tags):
                tags.append(tag)
        components = bundled.setdefault("components", {})
        for kind, taken in self.taken.items():
            own = components.setdefault(kind, {})
            for name, component in taken.items():
                if own.get(name, component) != component:
                    raise BundleError(f"openapi/{self.service}.yaml: components.{kind}.{name} is also in {COMMON}, "
                                      "differently; rename one")
                own[name] = component
        return bundled

    def resolve(self, value: Any, from_common: bool) -> Any:
        if isinstance(value, list):
            return [self.resolve(item, from_common) for item in value]
        if not isinstance(value, dict):
            return value
        reference = value.get("$ref")
        if isinstance(reference, str):
            target, _, path = reference.partition("#")
            if target == COMMON or (from_common and target == ""):
                return self.take(path, reference, value)
            if target:
                raise BundleError(f"openapi/{self.service}.yaml: '{reference}' points into a file other than {COMMON}")
        return {key: self.resolve(item, from_common) for key, item in value.items()}

    def take(self, path: str, reference: str, holder: Document) -> Any:
        """A reference into common.yaml: a component is copied under its own
        name, a path item is inlined."""
        where = f"openapi/{self.service}.yaml: '{reference}'"
        parts = path.strip("/").split("/")
        shared = pointer(self.common, path, where)
        if len(parts) == 3 and parts[0] == "components":
            kind, name = parts[1], parts[2]
            taken = self.taken.setdefault(kind, {})
            if name not in taken:
                taken[name] = None  # taken before resolving, so that a recursive schema ends
                taken[name] = self.resolve(shared, from_common=True)
            return {**holder, "$ref": f"#/components/{kind}/{name}"}
        if len(parts) == 2 and parts[0] == "paths":
            return self.resolve(shared, from_common=True)
        raise BundleError(f"{where}: refer to a component (#/components/KIND/NAME) or a path item (#/paths/...)")


METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


def operations(document: Document) -> list[tuple[str, str, Document]]:
    """Every operation as (METHOD, path, operation)."""
    return [(method.upper(), path, item[method]) for path, item in document.get("paths", {}).items()
            for method in METHODS if method in item]


def bodies(operation: Document) -> list[tuple[str, Document]]:
    """The request body and the responses of an operation, each with a label."""
    found = [("request body", operation["requestBody"])] if "requestBody" in operation else []
    return found + [(f"response {status}", response) for status, response in operation.get("responses", {}).items()]


def mappings(value: Any, where: str = "#") -> list[tuple[str, Document]]:
    """Every mapping in the document with its JSON pointer, examples left out."""
    found: list[tuple[str, Document]] = []
    if isinstance(value, dict):
        found.append((where, value))
        for key, item in value.items():
            if key not in ("example", "examples"):
                found += mappings(item, f"{where}/{str(key).replace('~', '~0').replace('/', '~1')}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += mappings(item, f"{where}/{index}")
    return found


def dereference(document: Document, value: Any) -> Any:
    while isinstance(value, dict) and isinstance(value.get("$ref"), str) and value["$ref"].startswith("#/"):
        value = pointer(document, value["$ref"][1:], "the bundle")
    return value


def problems(document: Document) -> list[str]:
    """What keeps a client generator from producing a complete, importable
    client (openapi-python-client drops or misnames what is inline)."""
    found: list[str] = []
    declared = {tag.get("name") for tag in document.get("tags", [])}
    seen: dict[str, str] = {}
    for method, path, operation in operations(document):
        where = f"{method} {path}"
        identifier = operation.get("operationId")
        if not identifier:
            found.append(f"{where}: no operationId")
        elif identifier in seen:
            found.append(f"{where}: operationId '{identifier}' is also {seen[identifier]}'s")
        else:
            seen[identifier] = where
        tags = operation.get("tags") or []
        if not tags:
            found.append(f"{where}: no tag")
        found += [f"{where}: tag '{tag}' is not in the document's top-level tags" for tag in tags if tag not in declared]
        for label, body in bodies(operation):
            for media, content in (dereference(document, body).get("content") or {}).items():
                schema = content.get("schema") or {}
                if media.startswith("text/"):
                    continue
                if media not in ("application/json", "application/octet-stream"):
                    found.append(f"{where}: the {label} is {media}; generators read application/json, "
                                 "application/octet-stream and text/* bodies")
                    continue
                if "$ref" not in schema:
                    found.append(f"{where}: the {label}'s {media} schema is inline; name it in components.schemas")
                elif media == "application/octet-stream" and dereference(document, schema).get("format") != "binary":
                    found.append(f"{where}: the {label} is application/octet-stream; its schema needs format: binary")
                # Peer RPCs are for other nodes of the service, not for users.
                wanted = "peer" not in tags and (label == "request body" or label.startswith("response 2"))
                if media == "application/json" and wanted and "example" not in content and "examples" not in content:
                    found.append(f"{where}: the {label} has no example")
    for where, mapping in mappings(document):
        # Inline variants get names after their position (EntryType1), if they are generated at all.
        found += [f"{where}/{key}/{index}: an inline {key} variant; name it in components.schemas"
                  for key in ("oneOf", "anyOf") for index, variant in enumerate(mapping.get(key, []))
                  if "$ref" not in variant and variant != {"type": "null"}]
        # In YAML, `{description: a, b}` is a description `a` and a key `b` without a value.
        found += [f"{where}/{key}: a key without a value; quote text with a comma in a {{flow: mapping}}"
                  for key, item in mapping.items() if item is None and key not in ("default", "const", "example")]
    return found


def example_problems(document: Document) -> list[str]:
    """Examples that their schema refuses (needs jsonschema, which
    `make test-deps` installs with openapi-spec-validator)."""
    import jsonschema
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    registry = Registry().with_resource("urn:bundle", Resource(contents=document, specification=DRAFT202012))
    found: list[str] = []
    for method, path, operation in operations(document):
        for label, body in bodies(operation):
            for media, content in (dereference(document, body).get("content") or {}).items():
                reference = (content.get("schema") or {}).get("$ref")
                if "example" not in content or not reference:
                    continue
                validator = jsonschema.Draft202012Validator({"$ref": "urn:bundle" + reference}, registry=registry)
                for error in validator.iter_errors(content["example"]):
                    location = "/".join(map(str, error.absolute_path))
                    found.append(f"{method} {path}: the {label}'s example at '{location}': {error.message}")
    return found


def swift_source(service: str, document: Document) -> str:
    """A Swift source that compiles the bundle into the service's binary."""
    name = SERVICES[service][1]
    module = "SharedCore" if service == "dht" else "Shared"
    # Compact JSON for programs; the YAML is the one to read (and to diff).
    texts = [json.dumps(document, ensure_ascii=False, separators=(",", ":")) + "\n",
             yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=120)]
    # The fewest `#` that make a raw string literal of both texts.
    hashes = "#"
    while any(f'"""{hashes}' in text or f"\\{hashes}" in text for text in texts):
        hashes += "#"
    json_text, yaml_text = (f'{hashes}"""\n{text}\n"""{hashes}' for text in texts)
    return (f"// Generated by `{REGENERATE}` (openapi/bundle.py) from openapi/{service}.yaml and openapi/{COMMON}:\n"
            f"// edit those, then regenerate. A test fails while this file is out of date.\n"
            f"import {module}\n\n"
            f"extension APIDocument {{\n"
            f"    /// {document['info']['title']}'s OpenAPI document, self-contained.\n"
            f"    public static let {name} = APIDocument(json: {json_text}, yaml: {yaml_text})\n"
            f"}}\n")


def bundles() -> dict[str, Document]:
    """Every service's bundle; raises BundleError listing what generators cannot use."""
    result = {service: Bundler(service).bundle() for service in SERVICES}
    found = [f"openapi/{service}.yaml: {problem}" for service, document in result.items() for problem in problems(document)]
    if found:
        raise BundleError("what client generators cannot use:\n  " + "\n  ".join(found))
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description="Bundles the OpenAPI documents into self-contained ones.")
    parser.add_argument("--check", action="store_true", help="fail if a generated source is out of date or an example is wrong")
    parser.add_argument("--print", metavar="SERVICE", choices=sorted(SERVICES), help="print one bundle (YAML) and stop")
    parser.add_argument("--json", action="store_true", help="with --print, print JSON")
    arguments = parser.parse_args()
    try:
        documents = bundles()
    except BundleError as error:
        print(f"bundle.py: {error}", file=sys.stderr)
        return 1
    if arguments.print:
        document = documents[arguments.print]
        print(json.dumps(document, indent=2, ensure_ascii=False) if arguments.json
              else yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=120), end="")
        return 0
    stale: list[str] = []
    for service, document in documents.items():
        target = ROOT / SERVICES[service][0]
        source = swift_source(service, document)
        current = target.read_text(encoding="utf-8") if target.exists() else None
        if current == source:
            continue
        if arguments.check:
            stale.append(SERVICES[service][0])
        else:
            target.write_text(source, encoding="utf-8")
            print(f"wrote {SERVICES[service][0]}")
    if arguments.check:
        wrong = [f"openapi/{service}.yaml: {problem}" for service, document in documents.items()
                 for problem in example_problems(document)]
        if wrong:
            print("bundle.py: examples that their schemas refuse:\n  " + "\n  ".join(wrong), file=sys.stderr)
        if stale:
            print(f"bundle.py: out of date with openapi/: {', '.join(stale)}; run `{REGENERATE}`", file=sys.stderr)
        return 1 if wrong or stale else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
