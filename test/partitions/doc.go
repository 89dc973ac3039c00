// Package partitions holds the end-to-end tests of dualpart on real
// partitions: two ext4 images on loop devices stand in for the module's
// system and usr_data partitions, and the dualpart command, built once by
// TestMain, runs on them as the init script runs it at boot.
//
// The tests play the design's scenarios A to D and the vendor's test
// methods 1 to 6, where erasing a partition is unmount, mkfs.ext4, mount,
// and every boot unmounts and mounts both partitions, so that what is
// checked is what reached the device. They check that a backup partition
// too small for a new version is refused before anything is written (by
// the filesystem's own write counter), and that a reconcile killed with
// SIGKILL at random instants of a large copy never leaves a side whose tag
// is present damaged, and that the next reconcile completes the copy. A
// copy stopped again and again must keep more of the payload in place at
// each stop and write at most the payload plus a batch per stop in all
// (by the device's write counter); a stopped copy that fills most of the
// partition must not keep later boots from completing it; a file moved to
// another directory must fit where the old one is removed; the room a
// copy of 100,000 small files asks for must be granted where the payload
// fits, on ext4 with 1 KiB and with 4 KiB blocks, and must not be less
// than what the copy takes; and the copy must read back what it wrote
// from the device unless told not to (--read-back=false).
// BenchmarkSync compares an fsync per file and per directory with one
// syncfs per filesystem. TestLargeFiles checks sizes over 4 GiB on a
// 32-bit build.
//
// They need root, loop devices, mount and mkfs.ext4, and are skipped,
// saying which is missing, elsewhere. Flags: -partitions.seed sets the
// seed of the kill instants; -short runs a smaller payload and fewer
// kills (for an emulated ARM run). Under qemu-user without binfmt_misc,
// the command is run through qemu-ARCH-static. DUALPART_PARTITIONS_BINARY
// names a dualpart binary to test instead of a build of the tree (an
// older release, to see a test fail on it):
//
//	DUALPART_PARTITIONS_BINARY=/tmp/dualpart-old go test ./test/partitions
//
// The package has tests only.
package partitions
