#!/usr/bin/env python3
"""Checks the gateway's OpenAPI document, and answers of the running API against it.

usage: openapi_check.py SPEC [SAMPLES_DIR]

SPEC must be a valid OpenAPI 3.0 document (openapi-spec-validator). Each file of
SAMPLES_DIR named <operationId>.<HTTP status>.json holds one answer of that operation;
it must match the schema the document gives for that status (or `default`), formats
(date-time, uuid) included. Prints one line per check; exit 0 when all pass, 1 otherwise.
"""
import json
import os
import sys

from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate
from openapi_spec_validator.readers import read_from_filename


def response_schema(spec, operation_id, status):
    for path_item in spec["paths"].values():
        for op in path_item.values():
            if not isinstance(op, dict) or op.get("operationId") != operation_id:
                continue
            responses = op["responses"]
            response = responses.get(str(status)) or responses.get("default")
            if response is None:
                return None
            if "$ref" in response:  # '#/components/responses/Name'
                response = spec["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
            return response["content"]["application/json"]["schema"]
    return None


def main() -> int:
    if len(sys.argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    spec_path = sys.argv[1]
    spec, _ = read_from_filename(spec_path)
    try:
        validate(spec)
    except Exception as e:  # the validator's own error types vary by version
        print(f"INVALID DOCUMENT: {spec_path}: {e}")
        return 1
    print(f"valid: {spec_path}")
    if len(sys.argv) == 2:
        return 0
    failures = 0
    samples = sorted(f for f in os.listdir(sys.argv[2]) if f.endswith(".json"))
    if not samples:
        print(f"NO SAMPLES in {sys.argv[2]}")
        return 1
    for name in samples:
        operation_id, status, _ = name.rsplit(".", 2)
        schema = response_schema(spec, operation_id, int(status))
        if schema is None:
            print(f"UNDOCUMENTED: {name}: no response {status} of {operation_id}")
            failures += 1
            continue
        with open(os.path.join(sys.argv[2], name)) as f:
            body = json.load(f)
        # The schema with the document's components beside it, so its $refs resolve.
        rooted = dict(schema, components=spec["components"])
        errors = list(OAS30Validator(rooted, format_checker=OAS30Validator.FORMAT_CHECKER).iter_errors(body))
        for e in errors[:5]:
            where = "/".join(str(p) for p in e.absolute_path)
            print(f"MISMATCH: {name}: at /{where}: {e.message}")
        failures += 1 if errors else 0
        if not errors:
            print(f"ok: {name}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
