#!/usr/bin/env bash
# The wheel as a user installs it: build it, install it into a NEW venv with its runtime dependencies only (no extras),
# `pip check`, then the main jobs through that venv alone (its python and console script; HOME and the data home in a
# temporary folder; the embedded Gradient Managed provider): save, load, versions diff, mount, a gradient:// read with
# fsspec, the server extension enabled, and a real jupyter server answering the REST API with its token.
#
#   bash scripts/smoke.sh            newest versions the requirements allow
#   bash scripts/smoke.sh --lowest   the lowest versions the floors allow (uv pip install --resolution lowest-direct)
#
# Used by .ci/run, before the test suite. Each step says what it checks; the first failure stops it, loudly.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
MODE="${1:-newest}"
WORK="$(mktemp -d -t gradient-smoke-XXXXXX)"
SERVER_PID=""
S3_PID=""
cleanup() {
  for pid in $SERVER_PID $S3_PID; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
START=$SECONDS

step() { printf '\n== smoke (%s, %ss): %s\n' "$MODE" "$((SECONDS - START))" "$*"; }
fail() {
  if [ -s "$WORK/server.log" ]; then printf '%s\n' "-- the jupyter server's log:" && cat "$WORK/server.log"; fi
  printf '\nSMOKE FAILED (%s): %s\n' "$MODE" "$*" >&2
  exit 1
}
# run WHAT CMD...: run CMD, show its output, fail naming WHAT when it exits non-zero. Its output is in $OUT.
run() {
  local what="$1"
  shift
  if ! OUT="$("$@" 2>&1)"; then
    printf '%s\n' "$OUT"
    fail "$what: \`$*\` exited non-zero"
  fi
  printf '%s\n' "$OUT"
}
expect() { grep -qE -- "$1" <<<"$OUT" || fail "$2: expected a line matching /$1/ in the output above"; }

step "build the wheel from $REPO"
python3 -m pip wheel -q --disable-pip-version-check --no-deps -w "$WORK/dist" "$REPO"
WHEEL="$(ls "$WORK"/dist/gradient_jupyter-*.whl)"
echo "$WHEEL"

VENV="$WORK/venv"
step "a new venv, the wheel with its runtime dependencies only ($MODE)"
python3 -m venv "$VENV"
PY="$VENV/bin/python"
if [ "$MODE" = --lowest ]; then
  python3 -m pip install -q --disable-pip-version-check uv
  # lowest-direct lowers only the requirements named on the command line: name the wheel's own (Requires-Dist without
  # an extra) beside it, so that each gets the lowest version its floor allows.
  mapfile -t REQUIRES < <(python3 - "$WHEEL" <<'PYTHON'
import sys, zipfile
from email.parser import Parser

wheel = zipfile.ZipFile(sys.argv[1])
meta = Parser().parsestr(wheel.read(next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))).decode())
print("\n".join(r for r in meta.get_all("Requires-Dist") or [] if "extra ==" not in r))
PYTHON
  )
  echo "lowest versions of: ${REQUIRES[*]}"
  python3 -m uv pip install -q --python "$PY" --resolution lowest-direct "$WHEEL" "${REQUIRES[@]}"
else
  "$PY" -m pip install -q --disable-pip-version-check "$WHEEL"
fi
"$PY" -m pip list --disable-pip-version-check --format=freeze | grep -iE '^(gradient|boto|obstore|fsspec|jupyter|pathspec|ipy|tornado|traitlets|tqdm|pyyaml|urllib3|jsonschema)' || true
for extra in jupyterlab notebook pytest pandas duckdb; do  # the extras and test tools
  "$PY" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('$extra') is not None)" \
    || fail "$extra is installed: this venv must hold the runtime dependencies only"
done

step "pip check: every installed distribution's requirements are met"
run "pip check" "$PY" -m pip check --disable-pip-version-check

step "every third-party import of the package is declared (the wheel's own importlib.metadata.requires)"
run "undeclared dependencies" "$PY" "$REPO/tests/helpers/dependencies.py"

# From here on, only the venv: its own programs, a private HOME and data home, nothing from the caller's Python.
export HOME="$WORK/home" GRADIENT_JUPYTER_HOME="$WORK/home/gradient" JUPYTER_CONFIG_DIR="$WORK/home/.jupyter"
unset PYTHONPATH VIRTUAL_ENV JUPYTER_PATH JUPYTER_DATA_DIR PYTHONHOME || true
OUTER_PYTHON="$(command -v python3)"  # only to run the test extra's moto server, the S3 store the wheel talks to
export PATH="$VENV/bin:/usr/bin:/bin"
mkdir -p "$HOME/project/data/images"
cd "$HOME/project"
printf 'id,label\n1,cat\n' >data/labels.csv
head -c 3000 /dev/zero >data/images/1.png
printf 'scratch\n' >data/notes.tmp
printf '*.tmp\n' >data/.gradientignore # read with pathspec: the import a new user hit first

GJ="$VENV/bin/gradient-jupyter"
[ -x "$GJ" ] || fail "the venv has no gradient-jupyter console script"

step "gradient-jupyter --version"
run "--version" "$GJ" --version

step "save: a new dataset on Gradient Managed, .gradientignore honoured"
run "save" "$GJ" save smoke ./data -m "first" --tag v1
expect '^Saved ds[a-z0-9]{13}:[a-z0-9]{7} \(dataset smoke, tag v1\)' "save"
expect '^3 files,' "save (labels.csv, images/1.png, .gradientignore; notes.tmp left out)"

step "save again after a change: a second version"
printf 'id,label\n1,cat\n2,dog\n' >data/labels.csv
run "second save" "$GJ" save smoke ./data -m "second"
expect '^Saved ds[a-z0-9]{13}:[a-z0-9]{7} \(dataset smoke\)' "second save"

step "load smoke:v1, byte for byte"
run "load" "$GJ" load smoke:v1 ./restored
[ "$(cat restored/labels.csv)" = "$(printf 'id,label\n1,cat')" ] || fail "load: restored/labels.csv is not v1's"
cmp restored/images/1.png data/images/1.png || fail "load: images/1.png differs"
[ ! -e restored/notes.tmp ] || fail "load: notes.tmp was saved although .gradientignore leaves it out"

step "datasets versions diff: what changed in latest since its parent"
run "diff" "$GJ" datasets versions diff --id smoke:latest
expect '^M labels\.csv$' "diff"
expect '0 added, 0 removed, 1 modified' "diff"

step "mount smoke:v1 read-only, then unmount"
run "mount" "$GJ" mount smoke:v1 ./mnt
expect '^Mounted smoke' "mount"
[ "$(cat mnt/labels.csv)" = "$(printf 'id,label\n1,cat')" ] || fail "mount: mnt/labels.csv is not v1's"
[ ! -w mnt/labels.csv ] || [ "$(id -u)" = 0 ] || fail "mount: mnt/labels.csv is writable"
run "unmount" "$GJ" unmount ./mnt

step "a gradient:// read with fsspec (found through the fsspec.specs entry point, no import)"
run "fsspec read" "$PY" -c '
import fsspec
with fsspec.open("gradient://smoke:v1/labels.csv", "rb") as f:
    data = f.read()
assert data == b"id,label\n1,cat\n", data
print("gradient://smoke:v1/labels.csv:", data)
print("ls:", fsspec.filesystem("gradient").ls("gradient://smoke:latest/", detail=False))
'

step "IPython: %load_ext, the magic (a save that changes nothing), the ipywidgets panel built"
run "magic" "$VENV/bin/ipython" --colors=NoColor -c '%load_ext gradient_jupyter
saved = %gradient_storage save smoke ./data
print("magic:", saved.ref, "unchanged" if saved.unchanged else "CHANGED")
import gradient_jupyter
print("panel:", type(gradient_jupyter.panel()).__name__)
'
expect '^magic: ds[a-z0-9]{13}:[a-z0-9]{7} unchanged$' "the magic's save"
expect '^panel: Panel$' "the panel"

step "an S3 provider (moto's server, from the test extra): create, save, load, the bucket doctor (obstore and boto3)"
"$OUTER_PYTHON" -c "import moto.server" 2>/dev/null || fail "moto is not installed: pip install 'moto[server]' (the test extra)"
S3_PORT="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$OUTER_PYTHON" -m moto.server -p "$S3_PORT" >"$WORK/moto.log" 2>&1 &
S3_PID=$!
"$PY" - "$S3_PORT" <<'PYTHON' || fail "moto's S3 server did not start on port $S3_PORT (its log: $WORK/moto.log)"
import sys, time, urllib.request

deadline = time.monotonic() + 60
while True:  # make the bucket once the server answers (moto takes an unsigned request)
    try:
        urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}/smoke-bucket", method="PUT"))
        break
    except OSError:
        if time.monotonic() > deadline:
            raise
        time.sleep(0.5)
PYTHON
run "create s3" "$GJ" storageProviders create s3 --name s3 --bucket smoke-bucket --endpoint "http://127.0.0.1:$S3_PORT" \
  --accessKey=smoke-key --secretAccessKey=smoke-secret
run "save to S3" "$GJ" save smoke-s3 ./data --provider s3 -m "on S3" --tag v1
expect '^Saved ds[a-z0-9]{13}:[a-z0-9]{7} \(dataset smoke-s3, tag v1\)' "save to S3"
run "load from S3" "$GJ" load smoke-s3:v1 ./restored-s3
cmp restored-s3/labels.csv data/labels.csv || fail "load from S3: labels.csv differs"
cmp restored-s3/images/1.png data/images/1.png || fail "load from S3: images/1.png differs"
run "the bucket doctor" "$GJ" storageProviders check --id s3 --origin http://127.0.0.1:8888
expect 'No check failed' "the bucket doctor"

step "a team file (YAML, checked with jsonschema) adds its provider to the listing"
cat >"$WORK/team.yaml" <<EOF
teamId: te0smoke1
providers:
  - name: team-data
    bucket: smoke-bucket
    endpoint: http://127.0.0.1:$S3_PORT
    accessKey: {env: TEAM_S3_KEY}
    secretAccessKey: {env: TEAM_S3_SECRET}
EOF
run "team file" env GRADIENT_JUPYTER_TEAM_FILE="$WORK/team.yaml" TEAM_S3_KEY=k TEAM_S3_SECRET=s \
  "$GJ" storageProviders list
expect '^team-data .* team' "team file"

step "jupyter server extension list: gradient_jupyter enabled"
run "extension list" "$VENV/bin/jupyter" server extension list
expect 'gradient_jupyter.*enabled' "extension list"
expect 'gradient_jupyter.*OK' "extension list (the extension imports)"

step "a real jupyter server answers GET gradient/api/storage-providers with its token"
PORT="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
TOKEN="smoke-$RANDOM$RANDOM"
"$VENV/bin/jupyter" server --no-browser --allow-root --ip=127.0.0.1 --port="$PORT" \
  --IdentityProvider.token="$TOKEN" --ServerApp.root_dir="$HOME/project" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
run "REST API" "$PY" - "$PORT" "$TOKEN" "$SERVER_PID" <<'EOF'
import json, os, sys, time, urllib.error, urllib.request

port, token, pid = sys.argv[1], sys.argv[2], int(sys.argv[3])
auth = {"Authorization": f"token {token}"}
deadline = time.monotonic() + 60
while True:  # up: jupyter_server's own API answers
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit("the jupyter server exited")
    try:
        urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/api/status", headers=auth)).close()
        break
    except (urllib.error.URLError, ConnectionError) as exc:
        if isinstance(exc, urllib.error.HTTPError) or time.monotonic() > deadline:
            sys.exit(f"GET /api/status: {exc}")
        time.sleep(0.3)
url = f"http://127.0.0.1:{port}/gradient/api/storage-providers"
try:
    with urllib.request.urlopen(urllib.request.Request(url, headers=auth)) as r:
        body = json.load(r)
except urllib.error.HTTPError as exc:
    sys.exit(f"GET {url}: {exc} (the server's log says why)")
names = [p["name"] for p in body["storageProviders"]]
assert "Gradient Managed" in names, body
print(f"GET {url} -> 200, providers {names}")
try:
    urllib.request.urlopen(url)
    sys.exit("answered without the token")
except urllib.error.HTTPError as exc:
    assert exc.code == 403, exc
    print("without the token -> 403")
EOF
grep -q "gradient_jupyter | extension was successfully loaded" "$WORK/server.log" || fail "the server's log does not say the extension loaded"

step "done: the wheel in a clean venv does the main jobs ($((SECONDS - START)) s)"
