#!/usr/bin/env bash
# Renders every page of the portal, light and dark, at desktop and phone sizes, into
# docs/screenshots/ (or $SCREENSHOTS_DIR), with the real gateway in headless Chromium.
# Needs what scripts/deps.sh installs.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --quiet --test it -- --ignored --exact portal::render_screenshots
echo "screenshots in ${SCREENSHOTS_DIR:-docs/screenshots}/"
