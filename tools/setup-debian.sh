#!/usr/bin/env bash
# Installs what plugen needs on a fresh Debian/Ubuntu machine: a C toolchain,
# the Mesa/EGL libraries the editor's wgpu renderer uses (headless too), Xvfb
# and ImageMagick for the window smoke test, and Rust 1.95 via rustup if no
# cargo is on PATH. Safe to run again; prints what it does.
set -euo pipefail

packages=(build-essential pkg-config ca-certificates curl
          libegl1 libegl-mesa0 libgl1-mesa-dri mesa-vulkan-drivers libvulkan1
          libxkbcommon0 libxkbcommon-x11-0 libx11-6 libxcursor1 libxrandr2 libxi6 libwayland-client0
          xvfb xauth imagemagick)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    echo "setup: cargo is in ~/.cargo/bin; add it to PATH (source ~/.cargo/env)"
  else
    echo "setup: installing Rust 1.95 with rustup"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --default-toolchain 1.95.0 --profile minimal
  fi
fi
echo "setup: done"
