#!/usr/bin/env bash
# Install everything the test suite needs, then run it. Used by README and by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
# Debian's packages the tests run: chromium (browser tests), curl (the README's S3 server lines), git (a fresh clone).
missing=()
for tool in chromium curl git; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}") >/dev/null
  else
    echo "note: not installed: ${missing[*]} (sudo apt-get install ${missing[*]}); the tests that need them fail or skip" >&2
  fi
fi
python3 -m pip install -q --disable-pip-version-check -e ".[test]"
python3 -m pytest "$@"
