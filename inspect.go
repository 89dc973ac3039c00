package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/dualpart/backup/internal/durable"
	"github.com/dualpart/backup/internal/manifest"
	"github.com/spf13/afero"
)

// found is a side as inspected.
type found struct {
	side    Side
	primary bool
	status  SideStatus
	tag     []byte             // the tag's bytes, copied verbatim to a destination
	man     *manifest.Manifest // a manifest for the tag's version, nil if none
	hashed  bool               // the payload's digests were checked against man
}

func (p *Pair) inspectBoth(ctx context.Context) (*found, *found, error) {
	pf, err := p.inspect(ctx, p.primary)
	if err != nil {
		return nil, nil, err
	}
	pf.primary = true
	bf, err := p.inspect(ctx, p.backup)
	if err != nil {
		return nil, nil, err
	}
	return pf, bf, nil
}

// inspect finds a side's state. Only a cancelled ctx is returned as an
// error: whatever else goes wrong makes the side damaged.
func (p *Pair) inspect(ctx context.Context, s Side) (*found, error) {
	f := &found{side: s}
	damaged := func(err error) (*found, error) {
		f.status.State, f.status.Err, f.man = StateDamaged, err, nil
		return f, nil
	}
	tag, err := readLimited(s.Fs, s.Tag, MaxTagSize)
	if errors.Is(err, fs.ErrNotExist) {
		return f, nil
	}
	if errors.Is(err, errTooLarge) {
		err = fmt.Errorf("%w: %v", ErrBadTag, err)
	}
	if err != nil {
		return damaged(fmt.Errorf("read tag %q: %w", s.Tag, err))
	}
	f.tag = tag
	v, err := p.cfg.reader.ReadVersion(tag)
	if err != nil {
		return damaged(fmt.Errorf("read tag %q: %w", s.Tag, err))
	}
	f.status.Version = v
	mpath := s.manifestPath()
	data, err := readLimited(s.Fs, mpath, manifest.MaxSize)
	if errors.Is(err, fs.ErrNotExist) {
		return p.unverified(f, fmt.Errorf("no manifest %q", mpath))
	}
	if err != nil {
		return damaged(fmt.Errorf("read manifest %q: %w", mpath, err))
	}
	m, err := manifest.Parse(data)
	if err != nil {
		return damaged(fmt.Errorf("read manifest %q: %w", mpath, err))
	}
	if mv, err := p.cfg.reader.ReadVersion([]byte(m.Version)); err != nil || mv.Compare(v) != 0 {
		// The customer's tooling bumped the tag after copying a new
		// payload in: the manifest is of an earlier version.
		return p.unverified(f, fmt.Errorf("manifest %q is for version %q, not %q", mpath, m.Version, v))
	}
	f.man = m
	if p.cfg.verify != VerifyNone {
		full := p.cfg.verify == VerifyFull
		if err := manifest.Check(ctx, s.Fs, s.Dir, m.Entries, full); err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return damaged(fmt.Errorf("verify %q: %w", s.Dir, err))
		}
		f.hashed = full
	}
	f.status.State = StateOK
	return f, nil
}

func (p *Pair) unverified(f *found, why error) (*found, error) {
	fi, err := manifest.Lstat(f.side.Fs, f.side.Dir)
	if err != nil || !fi.IsDir() {
		// A tag without a payload would, copied, empty the other side.
		if err == nil {
			err = errors.New("not a directory")
		}
		f.status.State, f.status.Err = StateDamaged, fmt.Errorf("payload %q: %w", f.side.Dir, err)
		return f, nil
	}
	f.status.State, f.status.Err = StateUnverified, why
	return f, nil
}

var errTooLarge = errors.New("too large")

func readLimited(fsys afero.Fs, name string, max int64) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%w: more than %d bytes", errTooLarge, max)
	}
	return data, nil
}

// adopt builds an unverified side's manifest from a full read and writes it
// beside its tag, so that the side can be verified from now on.
func (p *Pair) adopt(ctx context.Context, f *found) error {
	entries, err := manifest.Scan(ctx, f.side.Fs, f.side.Dir, true)
	if err != nil {
		return fmt.Errorf("read %q: %w", f.side.Dir, err)
	}
	m := &manifest.Manifest{Version: strings.Trim(string(f.tag), " \t\r\n"), Entries: entries}
	mpath := f.side.manifestPath()
	if _, err := durable.MkdirAll(f.side.Fs, filepath.Dir(mpath), 0o755, p.cfg.hooks); err != nil {
		return err
	}
	if err := durable.WriteFile(f.side.Fs, mpath, m.Marshal(), 0o644, p.cfg.hooks); err != nil {
		return err
	}
	p.cfg.logger.Info("wrote manifest", "side", f.side.Dir, "entries", len(entries))
	f.man, f.hashed = m, true
	return nil
}
