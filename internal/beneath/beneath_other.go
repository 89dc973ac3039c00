//go:build !linux

package beneath

import (
	"io/fs"
	"os"

	"github.com/spf13/afero"
)

// Dirs is unsupported here: Open always fails.
type Dirs struct{}

// Open returns ErrUnsupported.
func Open(root string) (*Dirs, error) { return nil, ErrUnsupported }

// OpenTop returns ErrUnsupported.
func OpenTop(root string) (*Dirs, error) { return nil, ErrUnsupported }

func (d *Dirs) Close()            {}
func (d *Dirs) Forget(rel string) {}
func (d *Dirs) OpenFile(rel string, flag int, perm fs.FileMode) (afero.File, error) {
	return nil, ErrUnsupported
}
func (d *Dirs) Remove(rel string) error                     { return ErrUnsupported }
func (d *Dirs) RemoveAll(rel string) error                  { return ErrUnsupported }
func (d *Dirs) Mkdir(rel string, perm fs.FileMode) error    { return ErrUnsupported }
func (d *Dirs) Symlink(target, rel string) error            { return ErrUnsupported }
func (d *Dirs) Lchown(rel string, uid, gid int) error       { return ErrUnsupported }
func (d *Dirs) Rename(oldrel, newrel string) error          { return ErrUnsupported }
func (d *Dirs) Lstat(rel string) (fs.FileMode, error)       { return 0, ErrUnsupported }
func (d *Dirs) Open(rel string, dir bool) (*os.File, error) { return nil, ErrUnsupported }
func (d *Dirs) OpenRoot() (*os.File, error)                 { return nil, ErrUnsupported }
func (d *Dirs) Sub(rel string) (*Dirs, error)               { return nil, ErrUnsupported }
