#!/usr/bin/env bash
# Checks and unit-tests the Prometheus alerting rules in k8s/base/monitoring/prometheus-rule.yaml:
#   1. extracts the rule groups (the PrometheusRule's spec) into a plain rules file,
#   2. promtool check rules,
#   3. promtool test rules on every *.test.yaml here (fails when any test fails),
#   4. promtool test rules on testdata/wrong-expectation.yaml, which MUST fail,
#   5. checks the Grafana dashboard: it parses, panel ids are unique, and every sluice_* and
#      metadata_* metric and every label a panel or variable queries is registered by some
#      service's code.
# Needs promtool (Debian package prometheus) and python3 with PyYAML (python3-yaml).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
RULE="$ROOT/k8s/base/monitoring/prometheus-rule.yaml"

die() { echo "monitoring-tests: error: $*" >&2; exit 1; }

need_apt=()
command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)
python3 -c 'import yaml' >/dev/null 2>&1 || need_apt+=(python3-yaml)
if ((${#need_apt[@]})); then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "monitoring-tests: installing ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends "${need_apt[@]}" >/dev/null 2>&1 ||
      { apt-get update -qq >/dev/null && apt-get install -y --no-install-recommends "${need_apt[@]}" >/dev/null; } ||
      die "could not install ${need_apt[*]}"
  else
    die "missing ${need_apt[*]} (run dev/install-deps.sh, or apt-get install ${need_apt[*]})"
  fi
fi

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# The tests name their rule file sluice-alerts.rules.yaml, resolved next to the test file.
python3 - "$RULE" "$WORK/sluice-alerts.rules.yaml" <<'PY'
import sys, yaml
src, dst = sys.argv[1], sys.argv[2]
with open(src) as f:
    doc = yaml.safe_load(f)
if doc.get("kind") != "PrometheusRule":
    sys.exit(f"{src}: kind is {doc.get('kind')!r}, not PrometheusRule")
groups = (doc.get("spec") or {}).get("groups")
if not groups:
    sys.exit(f"{src}: spec.groups is empty")
with open(dst, "w") as f:
    yaml.safe_dump({"groups": groups}, f, sort_keys=False)
PY

cp "$HERE"/*.test.yaml "$WORK/"
cp "$HERE/testdata/wrong-expectation.yaml" "$WORK/wrong-expectation.yaml"
cd "$WORK"

echo "== promtool check rules"
promtool check rules sluice-alerts.rules.yaml

echo "== promtool test rules"
tests=(*.test.yaml)
promtool test rules "${tests[@]}"

echo "== promtool test rules testdata/wrong-expectation.yaml (must fail)"
if promtool test rules wrong-expectation.yaml >wrong.log 2>&1; then
  cat wrong.log
  die "promtool accepted testdata/wrong-expectation.yaml; failing alert tests would go unnoticed"
fi
grep -q 'FAILED' wrong.log || { cat wrong.log; die "promtool failed on wrong-expectation.yaml, but not with a test failure"; }
sed 's/^/   | /' wrong.log
echo "   promtool rejected the wrong expectation, as it must"

echo "== grafana dashboard: parses, unique panel ids, every metric and label it queries is one the code registers"
python3 - "$ROOT" <<'PY'
import json, pathlib, re, sys
root = pathlib.Path(sys.argv[1])
board = json.loads((root / "k8s/base/monitoring/grafana-dashboard.json").read_text())
ids = [p["id"] for p in board["panels"]]
if len(ids) != len(set(ids)):
    sys.exit(f"grafana-dashboard.json: repeated panel ids {sorted(i for i in ids if ids.count(i) > 1)}")
code = "".join(f.read_text(errors="replace") for d in ("gateway", "consumers", "producers", "kafka", "common")
               for f in (root / d).rglob("*.cc"))
# Labels Prometheus or Kubernetes add to every series, and the histogram bucket bound.
added = {"le", "job", "instance", "namespace", "pod", "container", "service", "endpoint"}
missing = set()
queries = [(p["title"], t.get("expr", "")) for p in board["panels"] for t in p.get("targets", [])]
queries += [("variable " + v["name"], v["query"]["query"] if isinstance(v.get("query"), dict) else str(v.get("query", "")))
            for v in board.get("templating", {}).get("list", []) if v.get("type") == "query"]
for title, expr in queries:
    for name in re.findall(r"\b(?:sluice|metadata)_[a-z0-9_]+", expr):
        base = re.sub(r"_(bucket|count|sum|total)$", "", name)
        if not any(f'"{n}"' in code for n in (name, base)):
            missing.add(f"{title}: metric {name}")
    labels = set()
    for matchers in re.findall(r"\{([^}]*)\}", expr):
        labels |= {m.group(1) for m in re.finditer(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", matchers)}
    for group in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr):
        labels |= {l.strip() for l in group.split(",") if l.strip()}
    labels |= set(re.findall(r"label_values\([^,]+,\s*([a-zA-Z_][a-zA-Z0-9_]*)\)", expr))
    for label in labels - added:
        if f'"{label}"' not in code:
            missing.add(f"{title}: label {label}")
if missing:
    sys.exit("grafana-dashboard.json queries metrics or labels no service registers:\n  " + "\n  ".join(sorted(missing)))
print(f"   {len(ids)} panels, {len(queries)} queries: every metric and label registered")
PY

echo "monitoring-tests: OK"
