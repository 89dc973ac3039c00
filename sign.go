package backup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"

	"github.com/dualpart/backup/internal/manifest"
	"github.com/dualpart/backup/internal/nofollow"
	"github.com/dualpart/backup/internal/signature"
	"github.com/spf13/afero"
)

// SignatureSuffix is appended to a manifest's path to name its minisign
// signature: app_ver.txt.manifest.minisig.
const SignatureSuffix = signature.Suffix

// DefaultName is a pair's name unless WithName sets another.
const DefaultName = "app"

// A Keyring is the set of minisign public keys a pair trusts. With one
// (WithKeyring), a side is trusted only if its manifest carries a valid
// minisign signature by one of them (see the package documentation).
type Keyring struct{ k signature.Keyring }

// ReadKeyring reads minisign public key files from fsys: each path is a
// file, or a directory whose every *.pub file is read. It fails if a file
// is not a public key, or if no key is found. The keyring normally lives on
// the read-only rootfs, outside both payloads.
func ReadKeyring(fsys afero.Fs, paths ...string) (*Keyring, error) {
	k := &Keyring{}
	for _, p := range paths {
		fi, err := fsys.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("keyring: %w", err)
		}
		files := []string{p}
		if fi.IsDir() {
			if files, err = afero.Glob(fsys, filepath.Join(p, "*.pub")); err != nil {
				return nil, fmt.Errorf("keyring %q: %w", p, err)
			}
			sort.Strings(files)
			if len(files) == 0 {
				return nil, fmt.Errorf("keyring %q: no *.pub file in it", p)
			}
		}
		for _, name := range files {
			text, err := readLimited(fsys, name, signature.MaxSize)
			if err != nil {
				return nil, fmt.Errorf("keyring: %w", err)
			}
			if err := k.k.Add(text, name); err != nil {
				return nil, fmt.Errorf("keyring: %w", err)
			}
		}
	}
	if k.k.Len() == 0 {
		return nil, errors.New("keyring: no public key given")
	}
	return k, nil
}

// ParseKeyring returns a keyring of the given minisign public keys, each
// the text of a public key file (or the base64 line alone).
func ParseKeyring(keys ...[]byte) (*Keyring, error) {
	k := &Keyring{}
	for i, text := range keys {
		if err := k.k.Add(text, fmt.Sprintf("key %d", i+1)); err != nil {
			return nil, fmt.Errorf("keyring: %w", err)
		}
	}
	if k.k.Len() == 0 {
		return nil, errors.New("keyring: no public key given")
	}
	return k, nil
}

// Verify checks that sig, a minisign signature file's text, is a valid
// signature of message by a key of k. Its error wraps ErrUntrusted.
func (k *Keyring) Verify(message, sig []byte) error { return signature.Verify(&k.k, message, sig) }

// IDs returns the key IDs of the keyring, as minisign prints them.
func (k *Keyring) IDs() []string { return k.k.IDs() }

// WithKeyring makes the pair trust only sides whose manifest is signed by a
// key of k, names the pair (WithName) and is for the tag's version, and
// whose payload matches it. A side that is not trusted is StateUntrusted:
// never a copy source, and its version counts for nothing (a trusted side
// is copied over it, whatever its tag says). Install then takes a signed
// manifest only (InstallManifest), and Update is refused: the device cannot
// sign. A nil k removes the keyring.
func WithKeyring(k *Keyring) Option {
	return optionFunc(func(c *config) { c.keyring = k })
}

// WithName sets the pair's name, which a signed manifest must carry (the
// "name" line "dualpart manifest write --name" writes), so that one pair's
// signed manifest cannot stand in for another's. The default is
// DefaultName, "app". A name is 1 to 64 letters, digits, '.', '_' and '-'.
func WithName(name string) Option {
	return optionFunc(func(c *config) {
		c.name = name
		if err := manifest.ValidName(name); err != nil {
			c.nameErr = fmt.Errorf("pair %w", err)
		}
	})
}

// untrustedError is why a side is not trusted. It wraps ErrUntrusted, and
// its message is the reason alone: the side's state already says
// "untrusted".
type untrustedError struct{ err error }

func (e *untrustedError) Error() string {
	return strings.ReplaceAll(e.err.Error(), ErrUntrusted.Error()+": ", "")
}
func (e *untrustedError) Unwrap() error { return e.err }

func untrustedf(format string, a ...any) error {
	return &untrustedError{fmt.Errorf("%w: "+format, append([]any{ErrUntrusted}, a...)...)}
}

func untrusted(f *found, err error) (*found, error) {
	f.status.State, f.status.Err, f.man, f.claimed = StateUntrusted, err, nil, nil
	return f, nil
}

// readSigned reads and parses a side's manifest, verifying its signature
// over the very bytes parsed (a stream, never read twice) and its name.
// A refused signature is an *untrustedError; a garbled manifest is not.
func (p *Pair) readSigned(s Side) (*manifest.Manifest, []byte, error) {
	mpath := s.manifestPath()
	spath := mpath + SignatureSuffix
	sig, err := readLimited(s.Fs, spath, signature.MaxSize)
	if errors.Is(err, fs.ErrNotExist) {
		if _, merr := manifest.Lstat(s.Fs, mpath); errors.Is(merr, fs.ErrNotExist) {
			return nil, nil, untrustedf("no manifest %q and no signature: unsigned", mpath)
		}
		return nil, nil, untrustedf("manifest %q is not signed (no %q)", mpath, spath)
	}
	if err != nil {
		return nil, nil, untrustedf("signature %q: %v", spath, err)
	}
	check, err := signature.NewCheck(&p.cfg.keyring.k, sig)
	if err != nil {
		return nil, nil, &untrustedError{fmt.Errorf("%q: %w", spath, err)}
	}
	f, err := nofollow.Open(s.Fs, mpath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, untrustedf("no manifest %q beside its signature", mpath)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read manifest %q: %w", mpath, err)
	}
	defer f.Close()
	m, err := manifest.ParseReader(check.Reader(f), manifest.MaxSize)
	if err != nil {
		return nil, nil, fmt.Errorf("read manifest %q: %w", mpath, err)
	}
	if err := check.Verify(); err != nil {
		return nil, nil, &untrustedError{fmt.Errorf("%q: %w", mpath, err)}
	}
	if m.Name != p.cfg.name {
		return nil, nil, untrustedf("manifest %q is signed for pair %q, not %q", mpath, m.Name, p.cfg.name)
	}
	return m, sig, nil
}

// signedBytes checks, before a copy, that the manifest the destination
// will hold is the one its signature was made over, so that the side it
// makes is trusted in turn. It fails where a copy would change it: an
// unprivileged copy that drops setuid bits, or a format-1 manifest.
func (p *Pair) signedBytes(src *found, pl *copyPlan) error {
	if p.cfg.keyring == nil {
		return nil
	}
	if src.sig == nil {
		return untrustedf("copy source %q has no signature", src.side.Dir)
	}
	if pl.stripped > 0 {
		return untrustedf("%d entries of %q would lose setuid, setgid or capabilities on %q (not run as root), "+
			"so the copy would not match its signed manifest; nothing written", pl.stripped, src.side.Dir, pl.job.Dst.Dir)
	}
	if err := signature.VerifyFrom(&p.cfg.keyring.k, pl.manifest, src.sig); err != nil {
		why := "sign the manifest \"dualpart manifest write\" wrote, in format 2"
		if !canChown(pl.job.Dst.Fs) {
			why = "not run as root, the copy cannot keep the owners the manifest records"
		}
		return fmt.Errorf("the manifest %q would hold is not the one signed (%s); nothing written: %w",
			pl.job.Dst.Dir, why, err)
	}
	return nil
}

// InstallManifest installs the payload in directory dir of from as the
// version of the manifest at manifestPath (in from), which the payload must
// match entry for entry and byte for byte: a mismatch is refused before
// anything is written. On a pair with a keyring the manifest must be signed
// (its signature at manifestPath + SignatureSuffix, by a key of the
// keyring) and name the pair, and the signature is installed with it, so
// that both sides are trusted. Otherwise it works as Install.
func (p *Pair) InstallManifest(ctx context.Context, from afero.Fs, dir, manifestPath string) (Result, error) {
	if from == nil || dir == "" || manifestPath == "" {
		panic("backup: InstallManifest: needs an Fs, a directory and a manifest")
	}
	unlock, err := p.lock(ctx)
	if err != nil {
		return Result{}, err
	}
	defer unlock()
	src, err := p.readInstall(from, dir, manifestPath)
	if err != nil {
		return Result{}, err
	}
	res, cur, err := p.prepare(ctx, src.status.Version)
	if err != nil {
		return res, err
	}
	if err := manifest.Check(ctx, from, dir, src.man.Entries, true, p.cfg.scan...); err != nil {
		return res, fmt.Errorf("%q does not match %q; nothing written: %w", dir, manifestPath, err)
	}
	p.cfg.logger.Info("install", "version", src.status.Version.String(), "current", cur, "from", dir,
		"manifest", manifestPath, "signed", src.sig != nil)
	return p.publish(ctx, res, src)
}

// readInstall reads the manifest an install is given, and its signature.
func (p *Pair) readInstall(from afero.Fs, dir, manifestPath string) (*found, error) {
	s := Side{Fs: from, Dir: dir, Manifest: manifestPath}
	var m *manifest.Manifest
	var sig []byte
	var err error
	if p.cfg.keyring != nil {
		m, sig, err = p.readSigned(s)
	} else {
		m, err = readManifest(s)
	}
	if err != nil {
		return nil, err
	}
	v, err := p.cfg.reader.ReadVersion([]byte(m.Version + "\n"))
	if err != nil {
		return nil, fmt.Errorf("manifest %q: version %q: %w", manifestPath, m.Version, err)
	}
	return &found{side: s, hashed: true, man: m, sig: sig, tag: []byte(m.Version + "\n"),
		status: SideStatus{State: StateOK, Version: v}}, nil
}

// sigPath is where a side's manifest's signature lives.
func (s Side) sigPath() string { return s.manifestPath() + SignatureSuffix }
