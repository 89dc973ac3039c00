package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/dualpart/backup/internal/manifest"
	"github.com/dualpart/backup/internal/nofollow"
	"github.com/spf13/afero"
)

// found is a side as inspected.
type found struct {
	side    Side
	primary bool
	status  SideStatus
	tag     []byte             // the tag's bytes, copied verbatim to a destination
	man     *manifest.Manifest // a manifest for the side's version, nil if none
	sig     []byte             // man's signature, verified, on a pair with a keyring
	hashed  bool               // the payload's digests were checked against man
	// tagOnly marks a side whose tag is damaged but whose manifest parses
	// and is matched by the payload: it holds the manifest's version, and
	// tag holds that version as a tag should.
	tagOnly bool
	// claimed is the manifest of a side damaged because its payload does
	// not match it: two such sides may together hold a whole copy.
	claimed *manifest.Manifest
}

// usable reports whether a side can be a copy source: intact, or whole but
// for its tag.
func (f *found) usable() bool { return f.status.State.intact() || f.tagOnly }

// inspectBoth inspects the primary, then the backup, or both at once where
// both are on the operating system's filesystem: a boot in agreement then
// parses one side's manifest while it stats the other's payload. Other
// filesystems need not be safe for concurrent use (afero's MemMapFs is,
// a test's faulty or crash-simulating one need not be), and the
// VersionReader is called under a lock, since a caller's own need not be.
func (p *Pair) inspectBoth(ctx context.Context) (*found, *found, error) {
	tw := newTwin(p.primary)
	if !osFs(p.primary.Fs) || !osFs(p.backup.Fs) {
		pf, err := p.inspect(ctx, p.primary, tw, nil)
		if err != nil {
			return nil, nil, err
		}
		pf.primary = true
		bf, err := p.inspect(ctx, p.backup, nil, tw)
		if err != nil {
			return nil, nil, err
		}
		return pf, bf, nil
	}
	q := *p
	q.cfg.reader = &lockedReader{r: p.cfg.reader}
	var (
		bf   *found
		berr error
		done = make(chan struct{})
	)
	go func() {
		defer close(done)
		bf, berr = q.inspect(ctx, q.backup, nil, tw)
	}()
	pf, perr := q.inspect(ctx, q.primary, tw, nil)
	<-done
	if perr != nil {
		return nil, nil, perr
	}
	if berr != nil {
		return nil, nil, berr
	}
	pf.primary = true
	return pf, bf, nil
}

func osFs(fsys afero.Fs) bool {
	_, ok := fsys.(*afero.OsFs)
	return ok
}

// lockedReader calls a VersionReader one call at a time.
type lockedReader struct {
	mu sync.Mutex
	r  VersionReader
}

func (l *lockedReader) ReadVersion(tag []byte) (Version, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.ReadVersion(tag)
}

// inspect finds a side's state. Only a cancelled ctx is returned as an
// error: whatever else goes wrong makes the side damaged. The primary's
// inspection publishes its manifest, as parsed, to pub; the backup's takes
// it from take where its own manifest holds the same bytes (either nil).
func (p *Pair) inspect(ctx context.Context, s Side, pub, take *twin) (*found, error) {
	defer pub.publish(nil) // on every way out; a no-op once published
	f := &found{side: s}
	if err := s.checkWritable(); err != nil {
		// Read through, its content would be whatever the link's target
		// holds; written through, anything outside the pair.
		return damaged(f, err)
	}
	tag, err := readLimited(s.Fs, s.Tag, MaxTagSize)
	if errors.Is(err, fs.ErrNotExist) {
		return f, nil
	}
	if errors.Is(err, errTooLarge) {
		err = fmt.Errorf("%w: %v", ErrBadTag, err)
	}
	if err == nil {
		f.tag = tag
		f.status.Version, err = p.cfg.reader.ReadVersion(tag)
	}
	if err != nil {
		return p.badTag(ctx, f, fmt.Errorf("read tag %q: %w", s.Tag, err))
	}
	mpath := s.manifestPath()
	m, err := p.readManifest(f, take)
	if err == nil {
		pub.publish(m)
	}
	var ue *untrustedError
	switch {
	case errors.As(err, &ue):
		return untrusted(f, err)
	case errors.Is(err, fs.ErrNotExist):
		return p.unverified(f, fmt.Errorf("no manifest %q", mpath))
	case err != nil:
		return damaged(f, err)
	}
	if mv, err := p.cfg.reader.ReadVersion([]byte(m.Version)); err != nil || mv.Compare(f.status.Version) != 0 {
		// The customer's tooling bumped the tag after copying a new
		// payload in: the manifest is of an earlier version.
		why := fmt.Errorf("manifest %q is for version %q, not %q", mpath, m.Version, f.status.Version)
		if p.cfg.keyring != nil {
			// Signed for one version, tagged as another: the tag is
			// nobody's word.
			return untrusted(f, &untrustedError{fmt.Errorf("%w: %v", ErrUntrusted, why)})
		}
		return p.unverified(f, why)
	}
	if err := p.verify(ctx, f, m); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		f.claimed = m
		return damaged(f, err)
	}
	f.status.State = StateOK
	return f, nil
}

func damaged(f *found, err error) (*found, error) {
	f.status.State, f.status.Err, f.man = StateDamaged, err, nil
	return f, nil
}

// readManifest reads f's manifest: on a pair with a keyring, with its
// signature verified (f.sig set), a refusal being an *untrustedError.
// Without a keyring, where take (if not nil) holds a manifest parsed from
// the same bytes, that manifest is f's too.
func (p *Pair) readManifest(f *found, take *twin) (*manifest.Manifest, error) {
	if p.cfg.keyring == nil {
		if m := take.same(f.side); m != nil {
			return m, nil
		}
		return readManifest(f.side)
	}
	m, sig, err := p.readSigned(f.side)
	f.sig = sig
	return m, err
}

// readManifest reads and parses a side's manifest as a stream, bounded
// (manifest.MaxSize, MaxLine, MaxEntries): a huge, sparse or endless file
// there (a link to /dev/zero is refused before any read) is damaged after
// at most the cap is read, never held whole.
func readManifest(s Side) (*manifest.Manifest, error) {
	mpath := s.manifestPath()
	f, err := nofollow.Open(s.Fs, mpath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("read manifest %q: %w", mpath, err)
	}
	defer f.Close()
	m, err := manifest.ParseReader(f, manifest.MaxSize)
	if err != nil {
		return nil, fmt.Errorf("read manifest %q: %w", mpath, err)
	}
	return m, nil
}

// verify checks the payload against m at the pair's verify level and, on
// success, makes m the side's manifest.
func (p *Pair) verify(ctx context.Context, f *found, m *manifest.Manifest) error {
	if p.cfg.verify != VerifyNone {
		full := p.cfg.verify == VerifyFull
		if err := manifest.Check(ctx, f.side.Fs, f.side.Dir, m.Entries, full, p.cfg.scan...); err != nil {
			return fmt.Errorf("verify %q: %w", f.side.Dir, err)
		}
		f.hashed = full
	}
	f.man = m
	return nil
}

// badTag handles a side whose tag cannot be read or does not parse. Where
// its manifest parses, names a version the reader accepts and the payload
// matches it, the side holds that version whole and only its tag is
// damaged (tagOnly); otherwise its version is unknown and it is damaged.
func (p *Pair) badTag(ctx context.Context, f *found, why error) (*found, error) {
	f.tag, f.status.Version = nil, nil
	m, err := p.readManifest(f, nil)
	if err != nil {
		return damaged(f, why)
	}
	v, err := p.cfg.reader.ReadVersion([]byte(m.Version + "\n"))
	if err != nil {
		return damaged(f, why)
	}
	if err := p.verify(ctx, f, m); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return damaged(f, fmt.Errorf("%w; and %v", why, err))
	}
	f.status = SideStatus{State: StateDamaged, Version: v,
		Err: fmt.Errorf("%w; the manifest says version %s and the payload matches it", why, v)}
	f.tag, f.tagOnly = []byte(m.Version+"\n"), true
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

// twin passes the primary's manifest, as parsed, to the backup's
// inspection: after every copy the two manifests hold the same bytes, and
// a boot in agreement then parses one of them, not both (13 MB each at
// 100,000 files; on the module's single core the parse is most of a boot
// at VerifyNone). Same bytes, same parse: the backup's state is what its
// own parse would have made it. Manifests are never changed once parsed,
// so the two sides may share one.
type twin struct {
	primary Side
	done    chan struct{}
	once    sync.Once
	m       *manifest.Manifest // nil: none to share
}

func newTwin(primary Side) *twin { return &twin{primary: primary, done: make(chan struct{})} }

// publish hands m (nil for none) to the backup's inspection, once.
func (t *twin) publish(m *manifest.Manifest) {
	if t == nil {
		return
	}
	t.once.Do(func() {
		t.m = m
		close(t.done)
	})
}

// same returns the primary's manifest as parsed if the primary's parsed
// and s's manifest holds the same bytes; nil otherwise. It waits for the
// primary's inspection to publish first, so that nothing is read through
// a primary that inspection refused (a symlinked path, say).
func (t *twin) same(s Side) *manifest.Manifest {
	if t == nil {
		return nil
	}
	<-t.done
	if t.m == nil || !sameBytes(t.primary.Fs, t.primary.manifestPath(), s.Fs, s.manifestPath(), manifest.MaxSize) {
		return nil
	}
	return t.m
}

// sameBytes reports whether the files a (in afs) and b (in bfs) can be
// opened as regular files (nofollow) and hold the same bytes, at most max
// of them: read in step, a block at a time, up to the first difference.
func sameBytes(afs afero.Fs, a string, bfs afero.Fs, b string, max int64) bool {
	fa, err := nofollow.Open(afs, a)
	if err != nil {
		return false
	}
	defer fa.Close()
	fb, err := nofollow.Open(bfs, b)
	if err != nil {
		return false
	}
	defer fb.Close()
	const block = 64 << 10
	ba, bb := make([]byte, block), make([]byte, block)
	for read := int64(0); read <= max; {
		na, erra := io.ReadFull(fa, ba)
		nb, errb := io.ReadFull(fb, bb)
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			return false
		}
		read += int64(na)
		endA := erra == io.EOF || erra == io.ErrUnexpectedEOF
		endB := errb == io.EOF || errb == io.ErrUnexpectedEOF
		switch {
		case endA && endB:
			return read <= max
		case erra != nil || errb != nil:
			return false
		}
	}
	return false
}

var errTooLarge = errors.New("too large")

func readLimited(fsys afero.Fs, name string, max int64) ([]byte, error) {
	f, err := nofollow.Open(fsys, name)
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
// beside its tag, so that the side can be verified from now on. Where the
// side cannot be written (a rootfs mounted read-only, with no factory
// manifest), the manifest is kept in memory for this run: the side can
// still be a copy source, and the destination gets the manifest.
func (p *Pair) adopt(ctx context.Context, f *found) error {
	entries, err := manifest.Scan(ctx, f.side.Fs, f.side.Dir, true, p.cfg.scan...)
	if err != nil {
		return fmt.Errorf("read %q: %w", f.side.Dir, err)
	}
	f.man, f.hashed = &manifest.Manifest{Version: strings.Trim(string(f.tag), " \t\r\n"), Entries: entries}, true
	return p.keepManifest(f)
}

// keepManifest writes f's manifest, built from a full read of its payload,
// beside its tag; where the side cannot be written, it keeps it in memory
// for this run (see adopt).
func (p *Pair) keepManifest(f *found) error {
	m := f.man
	mpath := f.side.manifestPath()
	if err := f.side.checkPath(mpath); err != nil {
		p.cfg.logger.Warn("manifest kept in memory", "side", f.side.Dir, "err", err)
		return nil
	}
	err := f.side.mkdirAll(filepath.Dir(mpath), p.cfg.hooks)
	if err == nil {
		// Streamed, never held whole: 13 MB at 100,000 entries, on top
		// of the entries themselves, in the copy that adopts a side as
		// flashed.
		err = f.side.writeFile(mpath, 0o644, p.cfg.hooks, func(w afero.File) error {
			_, err := m.WriteTo(w)
			return err
		})
	}
	if readOnly(err) {
		p.cfg.logger.Warn("manifest kept in memory: the side is read-only", "side", f.side.Dir, "err", err)
		return nil
	}
	if err != nil {
		return err
	}
	p.cfg.logger.Info("wrote manifest", "side", f.side.Dir, "entries", len(m.Entries))
	return nil
}

// readOnly reports whether err says a filesystem cannot be written: a
// read-only mount (EROFS), or no permission (afero's ReadOnlyFs, a rootfs
// the app's user may not write).
func readOnly(err error) bool {
	return errors.Is(err, syscall.EROFS) || errors.Is(err, fs.ErrPermission)
}
