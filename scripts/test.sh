#!/usr/bin/env bash
# Install everything the test suite needs, then run it. Used by README and by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null
  else
    echo "note: chromium is not installed (sudo apt-get install chromium); browser tests will be skipped" >&2
  fi
fi
python3 -m pip install -q --disable-pip-version-check -e ".[test]"
python3 -m pytest "$@"
