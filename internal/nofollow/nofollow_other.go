//go:build !unix

package nofollow

import "os"

// openOS checks name with Lstat, then opens it and checks the handle.
func openOS(name string, dir bool) (*os.File, error) {
	fi, err := os.Lstat(name)
	if err != nil {
		return nil, err
	}
	if err := want(name, fi.Mode(), dir); err != nil {
		return nil, err
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	if fi, err = f.Stat(); err == nil {
		err = want(name, fi.Mode(), dir)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
