#!/usr/bin/env python3
"""Writes k8s/base/kafka-topics.yaml: one Strimzi KafkaTopic per topic of contracts/catalog.textproto.

    python3 k8s/gen-topics.py           # (re)write the file
    python3 k8s/gen-topics.py --check   # exit 1 if the file differs from what the catalog gives

The catalog is the one place that names topics; this keeps the manifests in step with it.
Only the `topics { ... }` blocks are read (name, partitions, replication_factor,
retention_ms, description), with a small parser for that subset of the text format.
Python 3 standard library only.
"""
import argparse
import difflib
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
CATALOG = ROOT / "contracts" / "catalog.textproto"
OUTPUT = ROOT / "k8s" / "base" / "kafka-topics.yaml"
CLUSTER = "sluice"  # metadata.name of the Kafka resource (k8s/base/kafka.yaml)

_TOKEN = re.compile(r'\s*(?:(#[^\n]*)|("(?:[^"\\]|\\.)*")|([A-Za-z_][A-Za-z0-9_.]*)|(-?[0-9][0-9.eE+-]*)|([{}:<>]))')


def _tokens(text):
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            if text[pos:].strip() == "":
                return
            raise ValueError(f"{CATALOG}: cannot parse near {text[pos:pos + 40]!r}")
        pos = m.end()
        comment, string, ident, number, punct = m.groups()
        if comment is not None:
            continue
        if string is not None:
            yield ("str", re.sub(r"\\(.)", r"\1", string[1:-1]))
        elif ident is not None:
            yield ("ident", ident)
        elif number is not None:
            yield ("num", number)
        elif punct is not None:
            yield ("punct", punct)


def _parse_message(tokens, closing):
    """Fields of one message as {name: [values]}; nested messages are dicts."""
    fields = {}
    for kind, value in tokens:
        if kind == "punct" and value == closing:
            return fields
        if kind != "ident":
            raise ValueError(f"{CATALOG}: expected a field name, got {value!r}")
        kind2, value2 = next(tokens)
        if kind2 == "punct" and value2 == ":":
            kind2, value2 = next(tokens)
        if kind2 == "punct" and value2 in "{<":
            fields.setdefault(value, []).append(_parse_message(tokens, "}" if value2 == "{" else ">"))
        elif kind2 in ("str", "num", "ident"):
            fields.setdefault(value, []).append(value2)
        else:
            raise ValueError(f"{CATALOG}: unexpected {value2!r} after {value}")
    if closing is not None:
        raise ValueError(f"{CATALOG}: unterminated message")
    return fields


def read_topics():
    catalog = _parse_message(_tokens(CATALOG.read_text(encoding="utf-8")), None)
    topics = []
    for t in catalog.get("topics", []):
        def one(field, convert=str, t=t):
            values = t.get(field)
            if not values:
                raise ValueError(f"{CATALOG}: a topic lacks {field}")
            return convert(values[-1])
        topics.append({
            "name": one("name"),
            "partitions": one("partitions", int),
            "replication_factor": one("replication_factor", int),
            "retention_ms": one("retention_ms", int),
            "description": t.get("description", [""])[-1],
        })
    if not topics:
        raise ValueError(f"{CATALOG}: no topics")
    return topics


def render(topics):
    out = [
        "# Generated from contracts/catalog.textproto by k8s/gen-topics.py; do not edit.",
        "# Regenerate: python3 k8s/gen-topics.py (k8s/validate.sh fails when this file is stale).",
    ]
    for t in topics:
        # Kubernetes names may not hold every Kafka topic name; spec.topicName keeps the real one.
        resource = re.sub(r"[^a-z0-9-]+", "-", t["name"].lower()).strip("-")
        out += [
            "---",
            f"# {t['description'].replace(chr(10), ' ')}" if t["description"] else f"# {t['name']}",
            "apiVersion: kafka.strimzi.io/v1",
            "kind: KafkaTopic",
            "metadata:",
            f"  name: {resource}",
            "  labels:",
            f"    strimzi.io/cluster: {CLUSTER}",
            "spec:",
            f"  topicName: {t['name']}",
            f"  partitions: {t['partitions']}",
            f"  replicas: {t['replication_factor']}",
            "  config:",
            f"    retention.ms: {t['retention_ms']}",
        ]
    return "\n".join(out) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing; exit 1 on a difference")
    parser.add_argument("--output", type=pathlib.Path, default=OUTPUT)
    args = parser.parse_args()
    want = render(read_topics())
    if args.check:
        have = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if have != want:
            sys.stderr.writelines(difflib.unified_diff(
                have.splitlines(True), want.splitlines(True), str(args.output), "from the catalog"))
            print(f"{args.output} is stale: run python3 k8s/gen-topics.py", file=sys.stderr)
            return 1
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(want, encoding="utf-8")
    print(f"wrote {args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output} "
          f"({len(want.split('kind: KafkaTopic')) - 1} topics)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
