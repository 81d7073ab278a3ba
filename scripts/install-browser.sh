#!/usr/bin/env bash
# Installs what the browser tests drive: Debian's Chromium and its driver (Playwright cannot
# download its own browser here), fonts-noto-cjk so Chinese renders in screenshots, and
# fonts-noto-color-emoji for the 👍 and 👎 under answers.
# Does nothing when all four are installed; otherwise runs apt-get, through sudo when not root.
set -euo pipefail

packages=(chromium chromium-driver fonts-noto-cjk fonts-noto-color-emoji)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$package")
done
((${#missing[@]})) || exit 0

if [[ $(id -u) -eq 0 ]]; then
  as_root=()
elif command -v sudo >/dev/null; then
  as_root=(sudo)
else
  echo "the browser tests need ${missing[*]}; install them as root with:" >&2
  echo "  apt-get update && apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "installing ${missing[*]} (Debian packages, for the browser tests)"
"${as_root[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
