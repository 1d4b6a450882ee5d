#!/usr/bin/env bash
# Smoke test of the real editor window: starts the release binary under Xvfb,
# waits for it to report its first face, screenshots the whole screen with
# ImageMagick, and checks that the window drew something (not a blank screen).
# Usage: tools/smoke-gui.sh [SCREENSHOT.png [EDITOR ARGS...]]   (default: target/smoke.png)
# e.g.   tools/smoke-gui.sh shot.png --open face.json
set -euo pipefail
cd "$(dirname "$0")/.."
shot=${1:-target/smoke.png}
shift || true
args="$*"
log=$(mktemp)
bin=target/release/plugen
[ -x "$bin" ] || cargo build --release
export PLUGEN_SMOKE_LOG=1
xvfb-run -a -s "-screen 0 1100x760x24" bash -c "
  $bin $args > '$log' 2>&1 &
  pid=\$!
  for i in \$(seq 1 200); do
    grep -q 'first face' '$log' && break
    kill -0 \$pid 2>/dev/null || break
    sleep 0.1
  done
  sleep ${SMOKE_WAIT:-1}
  import -window root '$shot'
  kill \$pid 2>/dev/null || true
  wait \$pid 2>/dev/null || true
" || true
cat "$log"
cp "$log" "${shot%.png}.log"
grep -q 'first face' "$log" || { echo "smoke: the editor never showed a face"; exit 1; }
im_convert=convert
[ -x /usr/bin/convert ] && im_convert=/usr/bin/convert   # Debian's ImageMagick, not a wrapper earlier on PATH
sd=$($im_convert "$shot" -colorspace Gray -format '%[fx:standard_deviation]' info:)
echo "smoke: screenshot $shot, grey standard deviation $sd"
awk -v sd="$sd" 'BEGIN { exit !(sd > 0.05) }' || { echo "smoke: screenshot looks blank"; exit 1; }
echo "smoke: ok"
