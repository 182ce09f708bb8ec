#!/usr/bin/env bash
# Take the README's screenshot: the real window on the bundled demo clip, on a virtual X display
# (Xvfb), with default settings (a throwaway settings folder, so your own never leak into it), saved
# after 150 frames so the live plot shows a few seconds of trace.
#
#   tools/screenshot.sh [OUT.png]          # default docs/screenshot.png
#   PYTHON=.venv/bin/python FRAMES=200 tools/screenshot.sh
#
# Needs xvfb-run and the X libraries Qt's xcb plugin loads; on Debian/Ubuntu:
#   apt-get install xvfb libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 \
#       libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 libxcb-xkb1 libxkbcommon-x11-0
# (a missing one makes Qt abort with "Could not load the Qt platform plugin xcb"; QT_DEBUG_PLUGINS=1 names it).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-docs/screenshot.png}"
command -v xvfb-run >/dev/null || { echo "error: xvfb-run not found (Debian/Ubuntu: apt-get install xvfb)" >&2; exit 2; }
config="$(mktemp -d)"
trap 'rm -rf "$config"' EXIT
XDG_CONFIG_HOME="$config" QT_QPA_PLATFORM=xcb xvfb-run -a -s "-screen 0 1280x800x24" \
    "${PYTHON:-python}" main.py --source assets/demo.mp4 --screenshot "$out" --frames "${FRAMES:-150}"
echo "saved $out"
