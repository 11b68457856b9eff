#!/bin/sh
# setup-lavapipe.sh — Mesa's lavapipe Vulkan driver (≥ 25, from Debian bookworm-backports), which Dawn needs to run
# WGSL on the CPU: the WebGPU tests run on it where there is no GPU. It enables backports by reusing the mirror
# that apt already uses (no host name is written anywhere). Idempotent; run as root.
set -eu
dst=/etc/apt/sources.list.d/bookworm-backports.sources
if [ ! -f "$dst" ]; then
  src=$(ls /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1)
  if [ -n "$src" ]; then
    # the first stanza that is not the security archive, with its Suites replaced
    awk 'BEGIN{RS=""; ORS="\n\n"} !/security/ && !done {sub(/Suites:[^\n]*/, "Suites: bookworm-backports"); print; done=1}' "$src" > "$dst"
  else
    # classic one-line format: reuse the first plain bookworm line's URI
    uri=$(awk '$1=="deb" && $3=="bookworm" {print $2; exit}' /etc/apt/sources.list)
    echo "deb $uri bookworm-backports main" > /etc/apt/sources.list.d/bookworm-backports.list
  fi
  apt-get update -qq
fi
apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers libvulkan1 >/dev/null
dpkg-query -W -f='${Version}\n' mesa-vulkan-drivers
