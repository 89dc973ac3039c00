package backup

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/dualpart/backup/internal/manifest"
	"github.com/dualpart/backup/internal/overlay"
	"github.com/spf13/afero"
)

// Update runs fn on a transaction over the payload and commits its changes
// as the next version: for Decimal tags the current version plus one; for
// other formats fn must call Tx.SetVersion. The pair is reconciled first,
// and fn sees the payload as the primary holds it. If fn returns an error,
// or changes nothing, nothing is written on either side. Otherwise the new
// version is written like Install writes one: primary first, then backup,
// so that a power cut leaves the old or the new version on both sides.
// A pair with a keyring (WithKeyring) refuses it with ErrUntrusted.
// Update is meant for small payloads (parameters): the transaction keeps
// every file it writes or moves in memory.
func (p *Pair) Update(ctx context.Context, fn func(tx *Tx) error) (Result, error) {
	if p.cfg.keyring != nil {
		// The device cannot sign what it writes: a pair of parameters
		// runs without a keyring.
		return Result{}, fmt.Errorf("%w: the pair has a keyring, and the device cannot sign an update", ErrUntrusted)
	}
	unlock, err := p.lock(ctx)
	if err != nil {
		return Result{}, err
	}
	defer unlock()
	res, cur, err := p.prepare(ctx, nil)
	if err != nil {
		return res, err
	}
	if cur == nil {
		return res, fmt.Errorf("update: %w", ErrNoVersion)
	}
	pf, err := p.inspect(ctx, p.primary, nil, nil)
	if err != nil {
		return res, err
	}
	if pf.man == nil {
		return res, fmt.Errorf("update: primary is %s after reconcile", pf.status.State)
	}
	read := func(rel string) ([]byte, error) {
		return afero.ReadFile(p.primary.Fs, filepath.Join(p.primary.Dir, filepath.FromSlash(rel)))
	}
	tx := &Tx{view: overlay.New(pf.man.Entries, read)}
	err = fn(tx)
	tx.done = true
	if err != nil {
		return res, fmt.Errorf("update: %w", err)
	}
	entries, data, err := tx.view.Result()
	if err != nil {
		return res, fmt.Errorf("update: %w", err)
	}
	next, err := nextVersion(cur, tx.version)
	if err != nil {
		return res, err
	}
	if err := p.checkVersion(cur, next); err != nil {
		return res, err
	}
	if equalEntries(entries, pf.man.Entries) {
		return res, nil
	}
	stage, root, err := p.stage(data)
	if err != nil {
		return res, fmt.Errorf("update: %w", err)
	}
	src := &found{side: Side{Fs: stage, Dir: root}, hashed: true,
		man: &manifest.Manifest{Version: next.String(), Entries: entries},
		tag: []byte(next.String() + "\n")}
	p.cfg.logger.Info("update", "version", next.String(), "current", cur.String())
	return p.publish(ctx, res, src)
}

// A Tx is the payload as an Update's function sees and changes it. Paths
// are slash-separated and relative to the payload; one that is absolute,
// not clean or leaves the payload is refused with an error wrapping
// ErrBadPath. Changes stay in memory until the Update commits. A Tx is
// valid only during the function and not safe for concurrent use.
type Tx struct {
	view    *overlay.View
	version Version
	done    bool
}

func (tx *Tx) live() {
	if tx.done {
		panic("backup: Tx used after its Update returned")
	}
}

// ReadFile returns the content of a file.
func (tx *Tx) ReadFile(name string) ([]byte, error) { tx.live(); return tx.view.ReadFile(name) }

// WriteFile creates or replaces a file with mode perm; its directory must
// exist.
func (tx *Tx) WriteFile(name string, data []byte, perm fs.FileMode) error {
	tx.live()
	return tx.view.WriteFile(name, data, perm)
}

// MkdirAll creates a directory and any missing parents with mode perm.
func (tx *Tx) MkdirAll(name string, perm fs.FileMode) error {
	tx.live()
	return tx.view.MkdirAll(name, perm)
}

// Chmod sets the mode of a file or directory.
func (tx *Tx) Chmod(name string, mode fs.FileMode) error { tx.live(); return tx.view.Chmod(name, mode) }

// Remove removes a file, a symlink or an empty directory.
func (tx *Tx) Remove(name string) error { tx.live(); return tx.view.Remove(name) }

// RemoveAll removes an entry and everything below it.
func (tx *Tx) RemoveAll(name string) error { tx.live(); return tx.view.RemoveAll(name) }

// Rename moves a file or directory within the payload.
func (tx *Tx) Rename(oldname, newname string) error {
	tx.live()
	return tx.view.Rename(oldname, newname)
}

// ReadDir lists the entries directly below a directory ("" for the
// payload itself).
func (tx *Tx) ReadDir(name string) ([]Entry, error) { tx.live(); return tx.view.ReadDir(name) }

// SetVersion sets the version the Update commits, for tag formats whose
// versions have no Next method.
func (tx *Tx) SetVersion(v Version) { tx.live(); tx.version = v }

func equalEntries(a, b []manifest.Entry) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Path != b[i].Path || !manifest.SameContent(a[i], b[i]) {
			return false
		}
	}
	return true
}

// nextVersion is the version an Update commits: the one the function set,
// or the successor of cur.
func nextVersion(cur, set Version) (Version, error) {
	if set != nil {
		return set, nil
	}
	n, ok := cur.(interface{ Next() (Version, error) })
	if !ok {
		return nil, fmt.Errorf("update: version %s has no successor: call Tx.SetVersion", cur)
	}
	next, err := n.Next()
	if err != nil {
		return nil, fmt.Errorf("update: %w", err)
	}
	return next, nil
}

// stage puts an Update's new content in memory, as the source of its copy.
// Only files whose content changed or moved are read by the copy, so only
// they are staged; the payload directory gets the primary's mode.
func (p *Pair) stage(data map[string][]byte) (afero.Fs, string, error) {
	stage := afero.NewMemMapFs()
	root := "/payload"
	fi, err := p.primary.Fs.Stat(p.primary.Dir)
	if err != nil {
		return nil, "", err
	}
	if err := stage.MkdirAll(root, fi.Mode()&manifest.ModeMask); err != nil {
		return nil, "", err
	}
	for rel, b := range data {
		name := filepath.Join(root, filepath.FromSlash(rel))
		if err := stage.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			return nil, "", err
		}
		if err := afero.WriteFile(stage, name, b, 0o644); err != nil {
			return nil, "", err
		}
	}
	return stage, root, nil
}
