#!/bin/busybox sh
# /init of the power-cut harness's guest (see ../README.md).
#
# Brings up the "flash" (phram over an ivshmem-plain device whose memory is a
# host file, so every store lands in that file at once and SIGKILL of qemu
# is a clean power cut), attaches UBI, mounts the two UBIFS volumes at
# /system and /usr_data, then hands over to /bin/pcguest for the mode given
# on the kernel command line:
#   powercut.mode=setup|work|check|space|bootbench  powercut.workload=NAME
#   powercut.mib=N
#   powercut.watch=1 (work: report when the reconcile first writes)
#   powercut.flash=phram|nand (space only: nand is nandsim with 2 KiB pages
#   and 128 KiB blocks, the EC2x's NAND geometry, held in guest RAM)
#   powercut.sync=syncfs|fsync (fsync: dualpart runs under the UNAME26
#   personality, so it takes its pre-5.8 per-file fsync path)
#   powercut.trace=1 (work: count dualpart's sync syscalls)
#   powercut.fault=F (mode media: the fault the host injected; the volumes
#   are mounted with chk_data_crc, and one that does not mount is
#   reformatted empty, as the vendor's find_partitions.sh does)
#   powercut.runs=N powercut.warm=N (bootbench: timed runs of each command
#   with the caches dropped before each, and without)
# Every line the host acts on starts with "POWERCUT-".
/bin/busybox mkdir -p /bin /sbin /proc /sys /dev /tmp /system /usr_data
/bin/busybox --install -s /bin
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
mount -t tmpfs tmpfs /tmp

say() { echo "POWERCUT-$*"; }
die() {
	say "FATAL $*"
	dmesg | tail -n 30
	poweroff -f
	sleep 60
}

MODE= WORKLOAD= MIB=16 WATCH= FLASH=phram SYNC=syncfs TRACE= FAULT= RUNS=15 WARM=0
for w in $(cat /proc/cmdline); do
	case $w in
	powercut.mode=*) MODE=${w#*=} ;;
	powercut.flash=*) FLASH=${w#*=} ;;
	powercut.workload=*) WORKLOAD=${w#*=} ;;
	powercut.mib=*) MIB=${w#*=} ;;
	powercut.watch=1) WATCH=-watch ;;
	powercut.sync=*) SYNC=${w#*=} ;;
	powercut.trace=1) TRACE=-trace ;;
	powercut.fault=*) FAULT=${w#*=} ;;
	powercut.runs=*) RUNS=${w#*=} ;;
	powercut.warm=*) WARM=${w#*=} ;;
	esac
done
[ -n "$MODE" ] || die "no powercut.mode on the kernel command line"

# Modules in dependency order, as the run script resolved them from
# modules.dep; phram (which needs the PCI address) and pcfix come after.
for m in $(cat /lib/modules/order); do
	insmod "/lib/modules/$m.ko" || die "insmod $m"
done

if [ "$FLASH" = nand ]; then
	# 256 MiB, 2 KiB pages, 128 KiB erase blocks (ID 20 aa 00 15), the
	# EC2x's block size (usr_data's 124.25 MiB is 994 of them). The VID
	# header goes in the second page (-O 2048), as for a NAND controller
	# without sub-page writes: LEBs of 126976 bytes, min. I/O 2048.
	for m in $(cat /lib/modules/order-nand); do
		insmod "/lib/modules/$m.ko" || die "insmod $m"
	done
	insmod /lib/modules/nandsim.ko id_bytes=0x20,0xaa,0x00,0x15 || die "insmod nandsim"
	ubiattach -m 0 -O 2048 >/dev/null || die "ubiattach nand"
elif [ "$FLASH" != phram ]; then
	die "unknown powercut.flash=$FLASH"
else
	dev=
	for d in /sys/bus/pci/devices/*; do
		if [ "$(cat "$d/vendor")" = 0x1af4 ] && [ "$(cat "$d/device")" = 0x1110 ]; then
			dev=$d
		fi
	done
	[ -n "$dev" ] || die "no ivshmem device (1af4:1110)"
	echo 1 >"$dev/enable"
	# BAR2 is the third line of the resource file: "start end flags", in hex.
	set -- $(sed -n 3p "$dev/resource")
	start=$1 end=$2
	[ "$((start))" -ne 0 ] || die "ivshmem BAR2 is not mapped"
	len=$((end - start + 1))
	insmod /lib/modules/phram.ko "phram=flash,$start,$len,131072" || die "insmod phram"
	insmod /lib/modules/pcfix.ko || die "insmod pcfix"
	ubiattach -m 0 >/dev/null || die "ubiattach"
fi

SYS_SIZE=56MiB OPTS=
[ "$FLASH" = nand ] && SYS_SIZE=100MiB
if [ "$MODE" = space ]; then
	# LZO, mkfs.ubifs's default compressor, whatever this kernel would
	# pick for a volume it formats itself.
	OPTS="-o compr=lzo"
fi
if [ "$MODE" = media ]; then
	# Check every data node's CRC on read: a flipped bit is then a read
	# error (EINVAL, "bad CRC" in the kernel log), not silently wrong bytes.
	OPTS="-o chk_data_crc"
fi
if [ "$MODE" = setup ] || [ "$MODE" = space ] || [ "$MODE" = bootbench ]; then
	# The flash is blank (all 0xFF): UBI formatted it at attach; make the
	# two partitions. usr_data takes what system leaves.
	ubimkvol /dev/ubi0 -N system -s $SYS_SIZE >/dev/null || die "ubimkvol system"
	ubimkvol /dev/ubi0 -N usr_data -m >/dev/null || die "ubimkvol usr_data"
fi

ms=1 mu=1
mount -t ubifs $OPTS ubi0:system /system || ms=0
mount -t ubifs $OPTS ubi0:usr_data /usr_data || mu=0
say "MOUNT system=$ms usr_data=$mu"
REFORMATTED=
if [ "$MODE" = media ]; then
	# What find_partitions.sh does with a partition that does not mount:
	# format it anew, empty. For UBIFS that is wiping the volume
	# (ubiupdatevol -t); the kernel formats an empty volume at mount.
	for v in system usr_data; do
		ok=$ms
		[ $v = usr_data ] && ok=$mu
		[ "$ok" = 1 ] && continue
		dev=
		for d in /sys/class/ubi/ubi0_*; do
			[ "$(cat "$d/name" 2>/dev/null)" = $v ] && dev=/dev/${d##*/}
		done
		[ -n "$dev" ] || die "no UBI volume named $v"
		ubiupdatevol "$dev" -t || die "ubiupdatevol -t $dev"
		mount -t ubifs $OPTS ubi0:$v /$v || die "mount of the reformatted $v"
		say "REFORMAT $v"
		REFORMATTED=$v
		if [ $v = system ]; then ms=1; else mu=1; fi
	done
fi

rc=0
/bin/pcguest -mode "$MODE" -workload "$WORKLOAD" -mib "$MIB" $WATCH \
	-sync "$SYNC" $TRACE -fault "$FAULT" -reformatted "$REFORMATTED" \
	-runs "$RUNS" -warm-runs "$WARM" \
	-mounted-system=$ms -mounted-usr_data=$mu || rc=$?

case $MODE in
work|chain)
	# Stay up with the mounts live: the host cuts the power.
	say "IDLE rc=$rc"
	while :; do sleep 60; done
	;;
check|space|media|bootbench)
	# What UBI and UBIFS said while attaching and recovering, for the log.
	dmesg | grep -iE 'ubi|recover|error|warn' | tail -n 40
	;;
esac
sync
umount /system 2>/dev/null
umount /usr_data 2>/dev/null
say "END mode=$MODE rc=$rc"
poweroff -f
sleep 60
