#!/bin/sh
# vendor-sync.sh: the vendor's backup method, as the vendor describes it
# (DESIGN.md, "The field"), written as the POSIX shell script it meant to
# be. It is the baseline dualpart is measured against (BENCHMARKS.md):
#
#   read both tags with cat; if they are equal, exit; otherwise remove the
#   older side's payload and tag, make its directory, copy the newer
#   payload's contents into it, sync, copy the tag, sync.
#
# Nothing more: no check of what was copied, no fsync of single files, a
# missing side read as an empty tag. The vendor's own script does not parse
# and copies apps into apps/apps (DESIGN.md); this one does what its
# description says, so that the comparison is with the method, not a bug.
#
# Usage: vendor-sync.sh PRIMARY_DIR PRIMARY_TAG BACKUP_DIR BACKUP_TAG

if [ $# -ne 4 ]; then
	echo "usage: $0 PRIMARY_DIR PRIMARY_TAG BACKUP_DIR BACKUP_TAG" >&2
	exit 2
fi
p_dir=$1 p_tag=$2 b_dir=$3 b_tag=$4

p_ver=$(cat "$p_tag" 2>/dev/null)
b_ver=$(cat "$b_tag" 2>/dev/null)
[ "$p_ver" = "$b_ver" ] && exit 0

# The newer side: the one with a tag, or the greater number.
if [ -z "$b_ver" ] || { [ -n "$p_ver" ] && [ "$p_ver" -gt "$b_ver" ]; }; then
	from_dir=$p_dir from_tag=$p_tag to_dir=$b_dir to_tag=$b_tag
else
	from_dir=$b_dir from_tag=$b_tag to_dir=$p_dir to_tag=$p_tag
fi

# "/." copies the directory's contents, dot files included, into to_dir
# (GNU and BusyBox cp -r copy symlinks as symlinks).
rm -rf "$to_dir" "$to_tag" || exit 1
mkdir -p "$to_dir" || exit 1
cp -r "$from_dir/." "$to_dir" || exit 1
sync
cp "$from_tag" "$to_tag" || exit 1
sync
