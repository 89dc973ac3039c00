package durable

import "github.com/spf13/afero"

// Rename renames the file oldname over newname on fsys, as fsys.Rename
// does. On the OS's filesystem it calls rename(2) itself: os.Rename first
// looks newname up, to refuse to rename a directory over an empty one,
// which costs a copy a path lookup a file for a case it never has (it
// renames files only, and rename(2) refuses to put a file where a
// directory is). The error is an *os.LinkError, as os.Rename's.
func Rename(fsys afero.Fs, oldname, newname string) error {
	if _, ok := fsys.(*afero.OsFs); ok {
		return renameOS(oldname, newname)
	}
	return fsys.Rename(oldname, newname)
}
