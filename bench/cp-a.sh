#!/bin/sh
# cp-a.sh: the raw-copy floor of the benchmark (BENCHMARKS.md): copy a
# payload directory's contents with cp -a into DST, then sync. No tag, no
# check, no removal of what was there: the least any copy can cost.
#
# Usage: cp-a.sh SRC_DIR DST_DIR

if [ $# -ne 2 ]; then
	echo "usage: $0 SRC_DIR DST_DIR" >&2
	exit 2
fi
mkdir -p "$2" || exit 1
cp -a "$1/." "$2" || exit 1
sync
