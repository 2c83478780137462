#!/usr/bin/env bash
# Validates the Kubernetes manifests offline (also run by ctest: test k8s_manifests).
#   bash k8s/validate.sh
# 1. k8s/base/kafka-topics.yaml must equal what k8s/gen-topics.py makes from the catalog.
# 2. Each overlay, and k8s/story (the story Job applied after prod), is built with kustomize
#    and every resource is validated strictly (unknown
#    fields and wrong types fail, and a resource without a schema fails: none is skipped):
#    built-in kinds against the Kubernetes schemas shipped in the PyPI package
#    kubernetes-validate, custom resources (Strimzi, CloudNativePG, Prometheus Operator) with
#    kubeconform against the JSON schemas in ../shared/k8s-schemas (beside the repository),
#    then k8s/schemas/ (kinds that folder lacks, converted the same way: k8s/schemas/README.md).
# 3. The manifests in k8s/testdata/ are broken on purpose; each must be rejected, for the
#    reason it was broken for, or the validation itself is not working.
# Tools are installed once, pinned, into the git-ignored .cache/: kustomize and kubeconform
# with `go install` (.cache/go/bin), kubernetes-validate in the venv .cache/venv-k8s.
# Exit status: 0 when everything is valid, 1 otherwise.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
K8S="$ROOT/k8s"
CACHE="$ROOT/.cache"
SCHEMAS="${SLUICE_K8S_SCHEMAS:-$ROOT/../shared/k8s-schemas}"
# Schemas kept in the repository, for custom kinds the shared folder has none of.
LOCAL_SCHEMAS="$K8S/schemas"

KUSTOMIZE_VERSION="v5.8.1"
KUBECONFORM_VERSION="v0.7.0"
# Kubernetes version whose built-in schemas are used (a release the package ships).
KUBERNETES_VERSION="1.33.0"
# kubernetes-validate and its dependencies, pinned.
PY_REQUIREMENTS=(
  kubernetes-validate==1.37.0
  attrs==26.1.0 importlib_resources==7.1.0 jsonschema==4.26.0 jsonschema-specifications==2025.9.1
  packaging==26.3 PyYAML==6.0.3 referencing==0.37.0 rpds-py==2026.9.1 typing_extensions==4.16.0
)
# Kustomizations built and validated, relative to k8s/.
KUSTOMIZATIONS=(overlays/dev overlays/prod story)
# testdata file | text the rejection must contain (each file's resources must all be rejected)
BROKEN=(
  "broken-deployment.yaml|'replica' was unexpected"
  "broken-kafkatopic.yaml|/spec/partitions"
  "broken-kafkauser.yaml|/spec/authorization/acls/0/operations/0"
  "missing-schema.yaml|schema"
)

VENV="$CACHE/venv-k8s"
STATE="$CACHE/k8s"
export GOPATH="$CACHE/go" GOMODCACHE="$CACHE/go/pkg/mod" GOCACHE="$CACHE/go/cache" GOBIN="$CACHE/go/bin"
export GOFLAGS="-modcacherw -buildvcs=false"
export PIP_CACHE_DIR="$CACHE/pip" PIP_DISABLE_PIP_VERSION_CHECK=1
KUSTOMIZE="$GOBIN/kustomize"
KUBECONFORM="$GOBIN/kubeconform"
PY="$VENV/bin/python"

die() { echo "k8s: error: $*" >&2; exit 1; }

# Run a step quietly; on failure show the tail of its log.
run_logged() {
  local log="$1"; shift
  if ! "$@" >"$log" 2>&1; then
    echo "k8s: error: '$*' failed; last 30 lines of $log:" >&2
    tail -n 30 "$log" >&2
    exit 1
  fi
}

find_go() {
  if command -v go >/dev/null 2>&1; then command -v go
  elif [[ -x /usr/local/go/bin/go ]]; then echo /usr/local/go/bin/go
  else die "go not found (on PATH or /usr/local/go/bin): needed to install kustomize and kubeconform"
  fi
}

# go_tool BINARY MODULE PACKAGE VERSION: install unless the binary was built from MODULE@VERSION.
go_tool() {
  local bin="$GOBIN/$1" module="$2" package="$3" version="$4" go
  go="$(find_go)"
  if [[ -x "$bin" && "$("$go" version -m "$bin" 2>/dev/null | awk '$1 == "mod" { print $2 "@" $3 }')" == "$module@$version" ]]; then
    return 0
  fi
  echo "k8s: installing $package@$version (go install)"
  mkdir -p "$STATE"
  run_logged "$STATE/go-install-$1.log" "$go" install "$package@$version"
}

python_tools() {
  local stamp="$VENV/.requirements" want
  want="$(python3 --version 2>&1) ${PY_REQUIREMENTS[*]}"
  if [[ -x "$PY" && -f "$stamp" && "$(<"$stamp")" == "$want" ]]; then
    return 0
  fi
  echo "k8s: installing ${PY_REQUIREMENTS[0]} into $VENV"
  mkdir -p "$STATE"
  rm -rf "$VENV"
  run_logged "$STATE/pip.log" python3 -m venv "$VENV"
  run_logged "$STATE/pip.log" "$VENV/bin/pip" install -q "${PY_REQUIREMENTS[@]}"
  echo "$want" >"$stamp"
}

# check FILE: validates every resource of FILE; prints one line per rejected resource and
# a last line "RESULT <total> <built-in> <custom> <rejected>". Exit 0 all valid, 1 some
# rejected, 2 the check itself failed.
check() {
  "$PY" - "$1" "$SCHEMAS" "$KUBECONFORM" "$KUBERNETES_VERSION" "$LOCAL_SCHEMAS" <<'PYEOF'
import collections, json, os, subprocess, sys, tempfile
import yaml
import kubernetes_validate

path, schemas, kubeconform, k8s_version, local_schemas = sys.argv[1:6]
schema_dirs = [schemas, local_schemas]
with open(path, encoding="utf-8") as f:
    docs = [d for d in yaml.safe_load_all(f) if d is not None]
rejected = []

def ident(d):
    return f"{d.get('kind', '?')}/{(d.get('metadata') or {}).get('name', '?')}"

# A resource is custom when its API group has schemas in one of the folders; every other
# resource must be a built-in kind known to kubernetes-validate (else it is rejected too).
builtin, custom = [], []
for d in docs:
    if not isinstance(d, dict) or "apiVersion" not in d or "kind" not in d:
        rejected.append(f"{path}: a document without apiVersion/kind")
        continue
    group = d["apiVersion"].split("/")[0] if "/" in d["apiVersion"] else ""
    is_custom = group and any(os.path.isdir(os.path.join(s, group)) for s in schema_dirs)
    (custom if is_custom else builtin).append(d)

for d in builtin:
    try:
        kubernetes_validate.validate(d, k8s_version, strict=True)
    except kubernetes_validate.SchemaNotFoundError as e:
        rejected.append(f"{ident(d)}: no schema: {e.message}")
    except kubernetes_validate.ValidationError as e:
        where = "/".join(str(p) for p in e.path)
        rejected.append(f"{ident(d)}: {where}: {e.message}")

if custom:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as tmp:
        yaml.safe_dump_all(custom, tmp, sort_keys=False)
    try:
        locations = []
        for s in schema_dirs:
            locations += ["-schema-location", s + "/{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json"]
        proc = subprocess.run(
            [kubeconform, "-strict", "-summary", "-verbose", "-output", "json", *locations, tmp.name],
            capture_output=True, text=True)
    finally:
        os.unlink(tmp.name)
    try:
        results = json.loads(proc.stdout)["resources"] or []
    except (ValueError, KeyError) as e:
        print(f"kubeconform gave no report (exit {proc.returncode}): {proc.stderr.strip()}", file=sys.stderr)
        sys.exit(2)
    want = collections.Counter((d["apiVersion"], d["kind"], d["metadata"]["name"]) for d in custom)
    seen = collections.Counter()
    for r in results:
        seen[(r["version"], r["kind"], r["name"])] += 1
        if r["status"] != "statusValid":
            errors = r.get("validationErrors") or [{"path": r["status"], "msg": r["msg"]}]
            rejected.append(f"{r['kind']}/{r['name']}: " + "; ".join(f"{e['path']}: {e['msg']}" for e in errors))
    if seen != want:
        print(f"kubeconform reported {sorted(seen.elements())}, expected {sorted(want.elements())}", file=sys.stderr)
        sys.exit(2)

for line in rejected:
    print(line)
print(f"RESULT {len(docs)} {len(builtin)} {len(custom)} {len(rejected)}")
sys.exit(1 if rejected else 0)
PYEOF
}

# --- tools ---------------------------------------------------------------------------------
[[ -d "$SCHEMAS" ]] || die "custom resource schemas not found at $SCHEMAS (set SLUICE_K8S_SCHEMAS)"
SCHEMAS="$(cd "$SCHEMAS" && pwd)"
command -v python3 >/dev/null 2>&1 || die "python3 not found"
go_tool kustomize sigs.k8s.io/kustomize/kustomize/v5 sigs.k8s.io/kustomize/kustomize/v5 "$KUSTOMIZE_VERSION"
go_tool kubeconform github.com/yannh/kubeconform github.com/yannh/kubeconform/cmd/kubeconform "$KUBECONFORM_VERSION"
python_tools

mkdir -p "$STATE"
WORK="$(mktemp -d "$STATE/run.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
failed=0

# --- topics generated from the catalog ----------------------------------------------------
if python3 "$K8S/gen-topics.py" --check >"$WORK/topics.log" 2>&1; then
  echo "k8s: topics: k8s/base/kafka-topics.yaml matches contracts/catalog.textproto ($(grep -c '^kind: KafkaTopic' "$K8S/base/kafka-topics.yaml") topics)"
else
  echo "k8s: FAIL topics: k8s/base/kafka-topics.yaml differs from the catalog:" >&2
  cat "$WORK/topics.log" >&2
  failed=1
fi

# --- overlays and k8s/story ----------------------------------------------------------------
for overlay in "${KUSTOMIZATIONS[@]}"; do
  name="${overlay//\//-}"
  built="$WORK/$name.yaml"
  if ! "$KUSTOMIZE" build "$K8S/$overlay" >"$built" 2>"$WORK/$name.err"; then
    echo "k8s: FAIL $overlay: kustomize build failed:" >&2
    cat "$WORK/$name.err" >&2
    failed=1
    continue
  fi
  set +e
  check "$built" >"$WORK/$name.out"
  rc=$?
  set -e
  read -r _ total builtin custom rejected < <(grep '^RESULT ' "$WORK/$name.out" || echo "RESULT 0 0 0 0")
  if (( rc == 0 )) && (( total > 0 )); then
    echo "k8s: $overlay: $total resources valid ($builtin built-in: kubernetes-validate --strict, $custom custom: kubeconform -strict)"
  else
    echo "k8s: FAIL $overlay: $rejected of $total resources rejected (check exit $rc):" >&2
    grep -v '^RESULT ' "$WORK/$name.out" | sed 's/^/  /' >&2
    failed=1
  fi
done

# k8s/story is applied on top of prod: the same image, and Read on every topic the base
# declares (a topic added to the catalog would otherwise stay invisible to the story).
if [[ -f "$WORK/story.yaml" && -f "$WORK/overlays-prod.yaml" ]]; then
  if "$PY" - "$K8S/story/kustomization.yaml" "$K8S/overlays/prod/kustomization.yaml" "$WORK/story.yaml" \
      "$K8S/base/kafka-topics.yaml" >"$WORK/story-step.out" 2>&1 <<'PYEOF'
import sys, yaml
story_k, prod_k, story_built, topics_file = sys.argv[1:5]
load = lambda p: [d for d in yaml.safe_load_all(open(p, encoding="utf-8")) if d]
problems = []
if load(story_k)[0].get("images") != load(prod_k)[0].get("images"):
    problems.append("images: differ from k8s/overlays/prod/kustomization.yaml")
topics = {d["spec"]["topicName"] for d in load(topics_file) if d.get("kind") == "KafkaTopic"}
users = [d for d in load(story_built) if d.get("kind") == "KafkaUser"]
read = {a["resource"]["name"] for u in users for a in u["spec"]["authorization"]["acls"]
        if a["resource"]["type"] == "topic" and "Read" in a["operations"]}
if topics - read:
    problems.append(f"KafkaUser lacks Read on topics {sorted(topics - read)}")
print("\n".join(problems))
sys.exit(1 if problems else 0)
PYEOF
  then
    echo "k8s: story: image and topic ACLs in step with prod and the catalog"
  else
    echo "k8s: FAIL story: not in step with prod:" >&2
    sed 's/^/  /' "$WORK/story-step.out" >&2
    failed=1
  fi
fi

# --- the validation rejects what it must ----------------------------------------------------
for entry in "${BROKEN[@]}"; do
  file="${entry%%|*}" expect="${entry#*|}"
  set +e
  check "$K8S/testdata/$file" >"$WORK/broken.out" 2>&1
  rc=$?
  set -e
  read -r _ total _ _ rejected < <(grep '^RESULT ' "$WORK/broken.out" || echo "RESULT 0 0 0 0")
  if (( rc == 1 )) && (( total > 0 && rejected == total )) && grep -qF -- "$expect" "$WORK/broken.out"; then
    echo "k8s: testdata/$file: rejected as expected ($rejected of $total):"
    grep -v '^RESULT ' "$WORK/broken.out" | cut -c1-200 | sed 's/^/  /'
  else
    echo "k8s: FAIL testdata/$file: expected all resources rejected with '$expect' (check exit $rc):" >&2
    sed 's/^/  /' "$WORK/broken.out" >&2
    failed=1
  fi
done

if (( failed )); then
  echo "k8s: FAILED" >&2
  exit 1
fi
echo "k8s: ok (kustomize $KUSTOMIZE_VERSION, kubeconform $KUBECONFORM_VERSION, ${PY_REQUIREMENTS[0]}, Kubernetes $KUBERNETES_VERSION schemas)"
