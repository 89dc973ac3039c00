// Package backup keeps an embedded application, and the settings it cannot
// lose, alive across two flash partitions.
//
// A payload directory lives on two sides, a primary (on a Quectel EC2x
// module, the system partition, which may be restored to its factory image)
// and a backup (usr_data, which is reformatted when its mount fails). Beside
// each payload is a version tag file, a decimal integer as the vendor's
// tooling writes it (`echo 4 > app_ver.txt`), and the library's manifest
// (by default the tag's path plus ".manifest"): every entry's path, type,
// mode, size, SHA-256 and link target, the version it describes, and a
// checksum of itself.
//
// At start-up, a Pair's Reconcile brings both sides to the newest intact
// version:
//
//	pair := backup.New(
//		backup.Side{Fs: afero.NewOsFs(), Dir: "/usrapp/apprun/apps", Tag: "/usrapp/apprun/app_ver.txt"},
//		backup.Side{Fs: afero.NewOsFs(), Dir: "/usrdata/appbackup/apps", Tag: "/usrdata/appbackup/app_ver.txt"},
//	)
//	res, err := pair.Reconcile(ctx)
//
// # Guarantees
//
//  1. The only intact copy of the newest version is never removed or
//     overwritten.
//  2. No downgrade happens unless the caller asked for it (WithFallback).
//  3. A side's tag is written only after every file of its payload and its
//     manifest are durable: the tag is the commit point.
//  4. After a successful Reconcile both sides hold the same version and the
//     same entries, byte for byte, with the same modes and link targets,
//     and each matches its manifest.
//  5. Power lost at any instant, then Reconcile, yields 4 with the newest
//     version that had been committed on either side: never a mix.
//  6. When both sides already agree, Reconcile writes nothing.
//
// # States and decisions
//
// A side is missing (no tag: an interrupted copy reads this way), ok (tag,
// manifest for that version, payload matching it), unverified (tag but no
// manifest for its version: the customer's tooling wrote it; trusted as
// found, given a manifest before it is copied from) or damaged (the tag does
// not parse, the manifest is garbled or names a path outside the payload,
// the payload does not match it, or a tag has no payload directory). The
// payload directory itself must be a real directory: a symlink there makes
// the side damaged, and a copy replaces it with a directory rather than
// write through it.
//
// The newest intact side is copied over the other. Two intact sides at one
// version are left alone; if their manifests differ, Reconcile returns
// ErrDiverged and writes nothing. Two intact sides at one version of which
// one or both are unverified get their manifests written once (a full read),
// after which later boots find both ok and write nothing. A damaged side is
// repaired from an intact side at the same or a newer version; a damaged
// side whose version is newer, or cannot be read, is left alone with
// ErrNoIntactCopy unless WithFallback allows the downgrade.
//
// Whatever can be recovered is. A tag that does not parse, beside a
// manifest that parses and that the payload matches, still tells the side's
// version (the manifest's): on a side otherwise in agreement only the tag is
// rewritten, and a garbled tag on the newer side blocks nothing. Two sides
// damaged at one version in different files, with agreeing manifests,
// together hold a whole copy: both are hashed in full first, then each
// damaged file is copied from the side where it is intact (ActionRepairBoth);
// only when some entry is intact on neither side does Reconcile fail, naming
// it, with nothing written. A source that cannot be written and has no
// manifest (a read-only rootfs) is still copied: its manifest is computed
// from a full read, kept in memory, and written to the destination only.
// An unverified source copied over a missing destination with nothing in
// its payload directory (the first copy of a side as flashed) is read once,
// not twice: the copy hashes each file as it reads it, and the source's
// manifest is written from those digests after the copy is read back,
// before the destination's manifest and tag; a copy that fails leaves the
// source unverified, with no manifest written.
//
// # Signed manifests
//
// With a keyring (WithKeyring, ReadKeyring), a side is trusted only if its
// manifest carries a valid minisign signature (the manifest's path plus
// SignatureSuffix) by a key of the keyring, names the pair (WithName,
// default "app"), is for the tag's version, and its payload matches it. A
// side that is not is untrusted (StateUntrusted, with the reason): never a
// copy source, and its version counts for nothing: a trusted side is
// copied over it whatever its tag says. Both untrusted: ErrUntrusted,
// nothing written. A copy writes the signature verbatim with the manifest,
// before the tag, so a restored side is trusted in turn. InstallManifest
// installs a release from its signed manifest; Install without one and
// Update are refused (the device cannot sign), so a parameters pair runs
// without a keyring.
//
// # Verify levels
//
// VerifyQuick (the default) checks every entry by stat: type, size, mode,
// owner, link target, and that nothing else is there; and the file
// capabilities of every file with an execute bit (capabilities act only
// through execve, so a file without one is held to its mode and its
// attribute is not read, which would cost as much as its stat). It reads
// no file content and
// catches what usually happens in the field: a deleted, truncated or
// replaced file, a changed mode, an interrupted copy. VerifyFull also
// hashes every file, finding a flipped bit at the cost of reading both
// payloads at every boot: choose it where boot time allows, or run it from
// a maintenance job. VerifyNone reads tags and manifests only, as the
// vendor's script did. Whatever the level, a copy checks the SHA-256 of
// every file it copies, before the destination is invalidated (unless the
// level is none) and again while copying, so a decayed source is never
// passed on.
//
// # Copying
//
// A copy first checks the source (the SHA-256 of every file it will copy)
// and the destination's room (where the filesystem can tell), then removes
// the destination's tag and syncs its directory. From there the
// destination reads as missing until its new tag is written, so partial
// progress is safe. The copy removes what the source lacks first (that
// frees room), then writes only the entries that differ by content: each
// file to a temporary name in its own directory, and batch by batch (8 MiB
// or 2,048 files) the batch's files are synced, renamed over their final
// names and their directories synced. On Linux's filesystems, synced whole
// (syncfs) a batch at a time, a batch's sync and renames run while the
// next batch is written, and batches are half that (4 MiB or 1,024 files),
// so that the two in hand never hold more than one batch's limit. A copy
// stopped at any instant (the
// init script's watchdog, kill -9, a power cut) keeps every finished batch,
// and the next attempt, hashing what it finds, writes only the rest: every
// boot makes progress, and K interrupted attempts write at most the payload
// plus K batches. Symlinks are copied as symlinks, never followed; modes are
// set explicitly, a directory's only after its entries are written (so a
// process that is not root can fill a 0555 directory). On the OS's
// filesystem an entry's owner, mode, capabilities and time are set through
// a handle on it (the one a file was written with), never by a name that
// something else writing usr_data could have swapped for a symlink or a
// FIFO meanwhile, and on Linux every entry below the payload directory is
// created, renamed and removed through a handle on its parent, reached
// without following a symlink. Then every entry is
// checked by stat and, unless WithReadBack(false), every file written is
// read back from the medium (its cached pages dropped with
// posix_fadvise(DONTNEED) where the OS has it; on the OS's filesystem each
// batch once it is synced, while the next one is written): a file the
// flash did not keep is rewritten once, and a second failure fails the copy with
// ErrReadBack and no tag. Last, the manifest and then the tag are written,
// each atomically. Temporary names start with ".dualpart-tmp-" and are
// reserved: leftovers are removed (and counted as free room) by the next
// copy, and a payload file named so is refused, with an error naming it,
// rather than dropped. Named pipes, sockets and device nodes in a
// destination are removed, never opened.
//
// # Room
//
// The space check estimates what the copy takes on the destination's
// filesystem, told by statfs: on ext4, each file its size rounded up to
// the block size, a directory one block, a symlink of 60 bytes or more one
// block, and 128 bytes plus the name for every entry (24 to 150 measured);
// on UBIFS, each file its size plus 56 bytes for every 4 KiB (the data
// node headers; no rounding, and compression is not counted on), a
// symlink its target, and 512 bytes plus the name for every entry (430 to
// 500 measured for an empty file or a short symlink); elsewhere as ext4
// with 512 bytes an entry. What the copy removes is credited (it is removed
// first), and a replaced file once its batch is renamed into place, so the
// figure checked is the peak over the copy's batches, plus the manifest.
// The estimate errs high: measured on ext4 (test/partitions) and on UBIFS
// (test/powercut --space), it was never below what a copy took, and at
// most what compression and ext4's small entries save above it.
//
// # Filesystems
//
// Every access goes through an afero.Fs; the two sides may use different
// ones. A filesystem may offer optional capabilities, found by type
// assertion: DirSyncer, FSSyncer, FreeSpacer and Locker. On afero.OsFs
// these come from the operating system (fsync of the directory, syncfs on
// Linux 5.8 and later, statfs, flock); elsewhere the space check is skipped
// and the lock is held within the Pair only. The lock file is the backup's
// tag plus ".lock"; where the backup cannot be written (a read-only backup
// restoring the primary, on a read-only mount) it is the primary's tag
// plus ".lock" instead.
package backup
