#!/usr/bin/env bash
# What the dualpart command adds to an app that already embeds the library
# (issue 16; README, "The command inside your app"): builds
# cli/internal/sizeapp for the module (ARMv7, static, stripped) without and
# with the tag dualpartcmd, which makes it call cli.Main when run as
# "app dualpart ..." or through a link named dualpart, and prints both
# sizes, the difference, the standalone dualpart's size, and the packages
# the command brings in.
#
#   bench/sizeapp.sh [GOARCH]     (default arm, GOARM=7)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
export CGO_ENABLED=0 GOOS=linux GOARCH="${1:-arm}" GOARM=7 GOFLAGS="${GOFLAGS:-} -buildvcs=false"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
build() { go build -trimpath -ldflags='-s -w' "$@"; }
build -o "$out/app" ./cli/internal/sizeapp
build -tags dualpartcmd -o "$out/app-cmd" ./cli/internal/sizeapp
build -o "$out/dualpart" ./cmd/dualpart
app=$(stat -c %s "$out/app")
cmd=$(stat -c %s "$out/app-cmd")
alone=$(stat -c %s "$out/dualpart")
echo "$(go version | cut -d' ' -f3), GOOS=$GOOS GOARCH=$GOARCH GOARM=$GOARM, -trimpath -ldflags='-s -w'"
printf '%-40s %10d bytes (%s KiB)\n' "app embedding the library" "$app" $((app / 1024))
printf '%-40s %10d bytes (%s KiB)\n' "the same app serving as the command" "$cmd" $((cmd / 1024))
printf '%-40s %10d bytes (%s KiB; goal: at most 512 KiB)\n' "what the command adds" $((cmd - app)) $(((cmd - app) / 1024))
printf '%-40s %10d bytes (%s KiB)\n' "standalone dualpart, for comparison" "$alone" $((alone / 1024))
echo "packages the command adds:"
comm -13 <(go list -deps ./cli/internal/sizeapp | sort) <(go list -tags dualpartcmd -deps ./cli/internal/sizeapp | sort) | sed 's/^/  /'
