#!/usr/bin/env bash
# Install the Debian packages ytempire needs, if any is missing (as root, or with sudo).
# fonts-noto-core has Noto Sans Devanagari (Hindi), fonts-noto-cjk Noto Sans CJK JP (Japanese).
# festival + festvox-us-slt-hts: the second offline English voice (a female HTS voice), so dialogue works offline.
# fonts-noto-color-emoji (OFL 1.1) and fonts-materialdesignicons-webfont: the offline illustration and icon library (28_library).
set -euo pipefail
PACKAGES=(python3-venv ffmpeg espeak-ng libespeak-ng1 fluidsynth fluid-soundfont-gm fontconfig
          fonts-inter fonts-bebas-neue fonts-dejavu-core fonts-noto-core fonts-noto-cjk
          festival festvox-us-slt-hts fonts-noto-color-emoji fonts-materialdesignicons-webfont)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing system packages: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "error: missing packages ${missing[*]}; install them as root: apt-get install ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
