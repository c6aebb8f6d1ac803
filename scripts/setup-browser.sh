#!/usr/bin/env bash
# Install Debian's chromium for the browser test of the HTML report (the last test of
# tests/integration/test_report.py).
#
# Playwright drives this system browser through its executable path; it never downloads a
# browser of its own. Installs only when $CHROMIUM (default /usr/bin/chromium) is absent, so
# `make test` can run it every time. Needs root (or sudo) and Debian's package repository.
set -euo pipefail
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}

if [ -x "$CHROMIUM" ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup-browser: $CHROMIUM is absent and there is no apt-get here;" \
    "install Chromium and set CHROMIUM to its path" >&2
  exit 1
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  sudo=(sudo)
fi
echo "setup-browser: installing Debian's chromium (for the HTML report's browser test)"
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
  chromium fonts-dejavu-core
"$CHROMIUM" --version
