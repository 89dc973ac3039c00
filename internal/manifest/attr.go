package manifest

import (
	"fmt"
	"io/fs"
	"math"
	"time"

	"github.com/spf13/afero"
)

// A CapsReader is a filesystem that can tell a file's file capabilities.
// A scan asks for a regular file's through it, where the Fs implements it;
// on afero.OsFs it asks Linux (lgetxattr(2)); elsewhere files read as
// having none. A wrapper around an OsFs that should keep them must
// implement it, for example by delegating to ReadCapsOS.
type CapsReader interface {
	// ReadCaps returns the raw value of name's security.capability
	// extended attribute, without following a final symlink: "" if it
	// has none or the filesystem keeps none.
	ReadCaps(name string) (string, error)
}

// ReadCapsOS returns the raw value of the security.capability extended
// attribute of the file at name in the operating system's filesystem,
// without following a final symlink: "" if it has none, the filesystem
// keeps none, or the system is not Linux.
func ReadCapsOS(name string) (string, error) { return osCaps(name) }

// capsOf returns the file capabilities of the regular file at name.
func capsOf(fsys afero.Fs, name string) (string, error) {
	var c string
	var err error
	switch fsys := fsys.(type) {
	case CapsReader:
		c, err = fsys.ReadCaps(name)
	case *afero.OsFs:
		c, err = osCaps(name)
	}
	if err != nil {
		return "", fmt.Errorf("read file capabilities of %q: %w", name, err)
	}
	return c, nil
}

// ownerOf returns the owner of the entry fi describes, where its Sys is a
// *syscall.Stat_t (see owner_unix.go).
func ownerOf(fi fs.FileInfo) (uid, gid uint32, ok bool) { return sysOwner(fi.Sys()) }

// unixNano returns t in nanoseconds since the Unix epoch, clamped to what
// an int64 holds (years 1678 to 2262) rather than wrapped around.
func unixNano(t time.Time) int64 {
	switch {
	case t.Before(time.Unix(0, math.MinInt64)):
		return math.MinInt64
	case t.After(time.Unix(0, math.MaxInt64)):
		return math.MaxInt64
	}
	return t.UnixNano()
}
