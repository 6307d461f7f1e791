#!/usr/bin/env bash
# Build the Debian package of Portcullis: the release binary, the files generated from it
# (shell completions, manual pages, configuration file), then `cargo deb`. The last line
# printed is the path of the .deb.
#
#   deploy/build-deb.sh
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo-deb >/dev/null || cargo install cargo-deb --locked

target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
cargo build --release --locked -p portcullis >&2
bin="$target/release/portcullis"
assets="$target/release/deb-assets"
rm -rf "$assets"
mkdir -p "$assets"

"$bin" completions bash > "$assets/portcullis.bash"
"$bin" completions zsh > "$assets/_portcullis"
"$bin" completions fish > "$assets/portcullis.fish"
# The manual: portcullis(1) and a page per subcommand (portcullis-serve(1),
# portcullis-keys-rotate(1), …).
"$bin" man --dir "$assets/man" > /dev/null
gzip -9n "$assets"/man/*.1

# The configuration file: the reference of every setting, with the data directory the
# package's (/var/lib/portcullis, the unit's StateDirectory) in force.
{
  echo "# /etc/portcullis/portcullis.toml: read by the portcullis service (portcullis.service)."
  echo "# Secrets go in /etc/portcullis/environment (mode 0600), never here."
  echo "#"
  "$bin" config default | sed 's|^# data_dir = .*$|data_dir = "/var/lib/portcullis"|'
} > "$assets/portcullis.toml"
if ! grep -qx 'data_dir = "/var/lib/portcullis"' "$assets/portcullis.toml"; then
  echo "build-deb: the data_dir line of 'portcullis config default' was not found" >&2
  exit 1
fi

# Strips the binary (the release profile keeps line tables for backtraces) and writes target/debian/portcullis_<version>_<arch>.deb.
cargo deb -p portcullis --no-build --locked --strip >&2
ls -t "$target"/debian/portcullis_*.deb | head -1
