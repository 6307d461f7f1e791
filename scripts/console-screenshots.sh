#!/usr/bin/env bash
# Screenshots of every console page at 1280 px and 390 px wide, in real Chromium.
#
# Runs the browser test that visits each page (it also checks that nothing reaches past
# the screen's edge at 390 px) and lists the PNG files it wrote to screenshots/ (git-ignored).
# Needs chromium and chromium-driver (apt-get install chromium chromium-driver).
set -euo pipefail
cd "$(dirname "$0")/.."
rm -f screenshots/page-*.png
CI=true cargo test -p portcullis-server --test it \
  console_browser::every_console_page_at_desktop_and_phone_width_in_chromium -- --exact
ls -1 screenshots/page-*.png
echo "$(ls screenshots/page-*.png | wc -l) screenshots in screenshots/"
