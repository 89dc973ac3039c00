#!/usr/bin/env bash
# .ci/arm.sh: the ARMv7 stage of CI.
#
#  1. Installs qemu-user-static (Debian's package) if it is missing, and
#     registers it with binfmt_misc if the kernel does not yet know how to
#     run ARM binaries (tests that run a binary they built, such as
#     cli's, need that under emulation).
#  2. Cross-builds cmd/dualpart, static and stripped, for linux/arm
#     (GOARM=7, the Quectel EC2x's Cortex-A7), linux/arm64 and linux/amd64,
#     prints their sizes, and runs the ARMv7 binary's demo under qemu.
#  3. Runs the whole test suite for GOARCH=arm GOARM=7 under qemu-arm-static
#     with -short: the power-loss campaign at its smallest size, the
#     real-partition tests (test/partitions) at theirs.
#
# Run as root on a fresh Debian 12 machine, from anywhere. Binaries go to
# $ARM_OUT (default: a temporary directory), never into the repository.
# ARM_TEST_TIMEOUT bounds the test run (default 40m).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"
unset DUALPART_CAMPAIGN # the bounded campaign, whatever the caller's environment
start=$(date +%s)
stage() { printf '\n==> arm: %s (%ds)\n' "$*" "$(( $(date +%s) - start ))"; }

stage "qemu-user-static"
if ! command -v qemu-arm-static >/dev/null; then
	[ "$(id -u)" = 0 ] || { echo "qemu-arm-static is missing and we are not root to install it" >&2; exit 2; }
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	apt-get install -y -q --no-install-recommends qemu-user-static
fi
qemu-arm-static --version | head -n1
binfmt=/proc/sys/fs/binfmt_misc
if [ ! -e "$binfmt/qemu-arm" ] && [ "$(id -u)" = 0 ]; then
	# Debian registers its binfmt entries through systemd or
	# binfmt-support, neither of which a CI container may run.
	[ -e "$binfmt/register" ] || mount -t binfmt_misc binfmt_misc "$binfmt" 2>/dev/null || true
	if [ -w "$binfmt/register" ] && [ -r /usr/lib/binfmt.d/qemu-arm.conf ]; then
		cat /usr/lib/binfmt.d/qemu-arm.conf >"$binfmt/register" || true
	fi
fi
if [ -e "$binfmt/qemu-arm" ]; then
	echo "binfmt_misc: ARM binaries run through $(sed -n 's/^interpreter //p' "$binfmt/qemu-arm")"
else
	echo "binfmt_misc: not available: tests that run an ARM binary they built will fail" >&2
fi

stage "cross-builds"
out=${ARM_OUT:-$(mktemp -d)}
mkdir -p "$out"
for target in arm:7 arm64: amd64:; do
	arch=${target%%:*} goarm=${target#*:}
	bin="$out/dualpart-linux-$arch"
	CGO_ENABLED=0 GOOS=linux GOARCH=$arch GOARM=$goarm \
		go build -trimpath -ldflags='-s -w' -o "$bin" ./cmd/dualpart
	size=$(stat -c %s "$bin")
	if [ "$arch" = arm ]; then
		echo "dualpart linux/arm (GOARMv7, stripped): $size bytes"
	else
		echo "dualpart linux/$arch (stripped): $size bytes"
	fi
done
echo "binaries in $out"
qemu-arm-static "$out/dualpart-linux-arm" demo | tail -n1

stage "go test ./... for linux/arm GOARM=7 under qemu-arm-static (-short)"
t0=$(date +%s)
CGO_ENABLED=0 GOOS=linux GOARCH=arm GOARM=7 \
	go test -short -count=1 -timeout "${ARM_TEST_TIMEOUT:-40m}" -exec qemu-arm-static ./...
echo "arm test run: $(( $(date +%s) - t0 ))s"

stage "done"
