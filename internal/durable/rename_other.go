//go:build !unix

package durable

import "os"

func renameOS(oldname, newname string) error { return os.Rename(oldname, newname) }
