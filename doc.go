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
// # Verify levels
//
// VerifyQuick (the default) checks every entry by stat: type, size, mode,
// link target, and that nothing else is there. It reads no file content and
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
// A copy first checks the source and the destination's free space (where
// the filesystem can tell), then removes the destination's tag and syncs
// its directory, writes only the entries that differ (each file to a
// temporary name in its own directory, synced, then renamed over the final
// name; symlinks as symlinks; modes set explicitly), removes what the source
// lacks, syncs every changed directory, checks the result, and writes the
// manifest and then the tag, each atomically. Temporary names start with
// ".dualpart-tmp-" and are reserved: leftovers are removed by the next copy.
//
// # Filesystems
//
// Every access goes through an afero.Fs; the two sides may use different
// ones. A filesystem may offer optional capabilities, found by type
// assertion: SyncDir(name string) error, to sync a directory some other
// way than opening it and calling Sync; FreeSpace(name string) (int64,
// error), for the pre-copy space check; and Lock(ctx, name string)
// (unlock func() error, err error), for the lock Reconcile takes. On
// afero.OsFs these come from the operating system (fsync of the directory,
// statfs, flock); elsewhere the space check is skipped and the lock is
// held within the Pair only.
package backup
