#!/usr/bin/env bash
# Checks the web build (target/web, from tools/build-web.sh) in Debian's
# headless Chromium, on WebGPU and on the WebGL2 fallback
# (tools/web/check-page.mjs). Installs chromium and Node.js with apt if they
# are missing, and playwright-core (the browser driver, no browser download)
# from tools/web/package-lock.json. Screenshots go to target/web-shots/.
set -euo pipefail
cd "$(dirname "$0")/../.."
need=()
command -v chromium >/dev/null || need+=(chromium)
command -v node >/dev/null || need+=(nodejs npm)
if ((${#need[@]})); then
  echo "web-check: installing ${need[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
(cd tools/web && npm ci --no-audit --no-fund --silent)
node tools/web/check-page.mjs "${1:-target/web}" "${2:-target/web-shots}"
