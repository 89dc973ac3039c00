// Package crashfs is a strict in-memory afero.Fs that models what a power
// cut can leave behind, for crash-testing code that must survive one.
//
// # Two states
//
// Every inode (file, directory, symlink) has a current state, which readers
// see, and a durable state, which survives a power cut:
//
//   - File data, mode and modification time become durable only when Sync is
//     called on a handle of that inode. A directory's mode and time become
//     durable with a Sync of the directory.
//   - A name created, renamed or removed becomes durable only when its parent
//     directory is synced (Open the directory, Sync the handle). A rename
//     touches two directories; each side becomes durable with its own
//     directory's sync. A directory Sync does not make the data of the files
//     it names durable.
//
// A power cut may keep, drop or tear each change that is not yet durable,
// independently: per inode for data and metadata, per (directory, name) for
// names. Tearing keeps some 4 KiB blocks of the new data and zeroes the
// others; blocks equal in the old and new data stay as they are, and the
// length is the new one. This is stricter than ext4 and UBIFS, which journal
// a rename atomically, so code that survives it survives them.
//
// With Options.UBIFS the names follow UBIFS instead: directory operations
// persist in order (a crash keeps a prefix of them, each rename atomic), and
// any Sync, of a file or a directory, commits every earlier directory
// operation, because UBIFS writes its journal in order on fsync. File data
// is still per inode.
//
// A failed Sync (an injected fault) leaves the inode's dirty 4 KiB blocks
// lost: later Syncs succeed but never make them durable, as Linux marks the
// pages clean after a writeback error. Readers keep seeing the new data until
// a crash; a block is written again only after it is rewritten. The file's
// length and mode still become durable with the next successful Sync, so a
// crash leaves zeros (or the old data) where the lost blocks were.
//
// # Crash states
//
// FS.CrashStates lists the filesystems a power cut at this instant could
// leave, after reboot. Crash points are the mutating calls, numbered from 1
// (see FS.Ops and FS.SetCrashAt); faults and a space budget are injected on
// the same calls (FS.InjectFault, FS.SetSpaceBudget).
//
// A post-crash state is repaired the way fsck would where the per-name model
// produces what no real filesystem can: a directory reachable under two names
// (a rename whose two sides were not both synced) keeps the name it has now
// if that survives, else the first found breadth-first in name order, and
// anything reachable by no name disappears. Files may end up with two names (a hard link), which is
// harmless.
//
// # Behaviour where afero.MemMapFs is lenient
//
// Paths are cleaned and absolute; a relative path is taken relative to "/".
// Errors are *os.PathError or *os.LinkError wrapping a syscall.Errno, as the
// os package returns them, so errors.Is(err, fs.ErrNotExist) and
// errors.Is(err, syscall.ENOTEMPTY) work. Lookups follow symlinks as the
// kernel does: every intermediate component, relative targets against the
// link's directory, ".." physically, at most 40 links (then ELOOP). The last
// component is followed by Open, OpenFile, Stat, Chmod, Chown and Chtimes,
// and not by LstatIfPossible, Remove, RemoveAll, Rename, Mkdir,
// SymlinkIfPossible and ReadlinkIfPossible. OpenFile with O_CREATE through a
// dangling symlink creates the link's target, as Linux does, unless O_EXCL
// is set (then it fails with EEXIST). Permission bits are kept exactly as
// given (no umask) and never checked: every caller acts as root. Directory
// modification times change only with Chtimes; file times change with writes
// and truncation. Trailing slashes are cleaned away and so not checked.
//
// Every method is safe for concurrent use: one mutex guards the filesystem
// and its handles.
package crashfs
