#!/usr/bin/env bash
# Install the Debian packages ytempire needs, if any is missing (as root, or with sudo).
# fonts-noto-core has Noto Sans Devanagari (Hindi), fonts-noto-cjk Noto Sans CJK JP (Japanese).
# festival + festvox-us-slt-hts: the second offline English voice (a female HTS voice), so dialogue works offline.
# fonts-noto-color-emoji (OFL 1.1) and fonts-materialdesignicons-webfont: the offline illustration and icon library (28_library).
# redis-server: the tests' throwaway Redis for the job API's Redis broker (54_api); no daemon is started or enabled.
set -euo pipefail
PACKAGES=(python3-venv ffmpeg espeak-ng libespeak-ng1 fluidsynth fluid-soundfont-gm fontconfig
          fonts-inter fonts-bebas-neue fonts-dejavu-core fonts-noto-core fonts-noto-cjk
          festival festvox-us-slt-hts fonts-noto-color-emoji fonts-materialdesignicons-webfont redis-server)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && command -v promtool >/dev/null && exit 0
[ ${#missing[@]} -eq 0 ] || echo "installing system packages: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "error: missing packages ${missing[*]}; install them as root: apt-get install ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
[ ${#missing[@]} -eq 0 ] || $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# promtool (44_monitoring checks and unit-tests the alert rules with it): the binary alone, from Debian's prometheus package;
# installing that package would add a Prometheus daemon and 330 MB (mostly libjs-moment-timezone) for its web UI
if ! command -v promtool >/dev/null; then
  echo "installing promtool (from Debian's prometheus package) into ${PROMTOOL_DIR:=/usr/local/bin}"
  tmp=$(mktemp -d); chmod 755 "$tmp"
  (cd "$tmp" && apt-get download -qq prometheus 2>/dev/null)
  dpkg-deb --fsys-tarfile "$tmp"/prometheus_*.deb | $SUDO tar -x -C "$PROMTOOL_DIR" --strip-components=3 ./usr/bin/promtool
  rm -rf "$tmp"
fi
