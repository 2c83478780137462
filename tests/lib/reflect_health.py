#!/usr/bin/env python3
"""Checks a gateway the way grpcurl does: every service that reflection lists must resolve
to a descriptor, and grpc.health.v1.Health/Check, called with a request built from the
reflected descriptor alone (no generated health code), must answer SERVING for the server
("") and for each service named on the command line.

usage: reflect_health.py HOST:PORT SERVICE...
Prints one line per check; exit 0 when all pass, 1 otherwise."""
import sys

import grpc
from google.protobuf import descriptor_pool, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    target, wanted = sys.argv[1], sys.argv[2:]
    failures = 0
    with grpc.insecure_channel(target) as channel:
        db = ProtoReflectionDescriptorDatabase(channel)
        pool = descriptor_pool.DescriptorPool(db)
        listed = sorted(db.get_services())
        print("listed: " + " ".join(listed))
        for name in listed:
            try:
                pool.FindServiceByName(name)
                print(f"resolved: {name}")
            except KeyError as e:
                print(f"UNRESOLVED: {name}: {e}")
                failures += 1
        if "grpc.health.v1.Health" not in listed:
            print("MISSING: grpc.health.v1.Health is not listed")
            return 1
        if failures:
            return 1  # Health/Check cannot be built from what reflection gave
        check = pool.FindServiceByName("grpc.health.v1.Health").FindMethodByName("Check")
        request_cls = message_factory.GetMessageClass(check.input_type)
        response_cls = message_factory.GetMessageClass(check.output_type)
        call = channel.unary_unary("/grpc.health.v1.Health/Check",
                                   request_serializer=lambda m: m.SerializeToString(),
                                   response_deserializer=response_cls.FromString)
        serving = check.output_type.fields_by_name["status"].enum_type.values_by_name["SERVING"].number
        for service in [""] + wanted:
            try:
                status = call(request_cls(service=service), timeout=5).status
            except grpc.RpcError as e:
                print(f"FAILED: Check({service!r}): {e.code().name} {e.details()}")
                failures += 1
                continue
            name = check.output_type.fields_by_name["status"].enum_type.values_by_number[status].name
            ok = status == serving
            failures += 0 if ok else 1
            print(f"{'ok' if ok else 'NOT SERVING'}: Check({service!r}) = {name}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
