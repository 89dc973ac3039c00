package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/dualpart/backup"
	"github.com/dualpart/backup/internal/durable"
	"github.com/dualpart/backup/internal/manifest"
	"github.com/dualpart/backup/internal/nofollow"
	"github.com/dualpart/backup/internal/signature"
	"github.com/spf13/afero"
)

// manifestFlags name one side: its payload, its tag and its manifest.
type manifestFlags struct {
	dir, tag, manifest, version, format string
	name, sign                          string
	keyring                             []string
}

func (f *manifestFlags) register(set *flag.FlagSet, write bool) {
	set.StringVar(&f.dir, "dir", defaultPrimary, "payload `DIR`")
	set.StringVar(&f.tag, "tag", defaultPrimaryTag, "version tag `FILE` (beside the payload, not in it)")
	set.StringVar(&f.manifest, "manifest", "", "manifest `FILE` (default: the tag's path plus .manifest, where reconcile looks)")
	set.StringVar(&f.format, "version-format", "int", "tag `format`: int or semver")
	if write {
		set.StringVar(&f.version, "version", "", "the payload's `VERSION` (default: the tag's)")
		set.StringVar(&f.name, "name", "", "the pair's `NAME`, written in the manifest (a signed manifest must carry it; \""+backup.DefaultName+"\" if --sign is given without it)")
		set.StringVar(&f.sign, "sign", "", "sign the manifest with this minisign secret key `FILE` (unencrypted: minisign -G -W), writing the manifest's path plus "+backup.SignatureSuffix)
		return
	}
	set.StringVar(&f.name, "name", backup.DefaultName, "with --keyring, the pair `NAME` the manifest must carry")
	set.Func("keyring", "minisign public key `FILE` or DIR of *.pub (repeatable): also check the manifest's signature and name", func(v string) error {
		f.keyring = append(f.keyring, v)
		return nil
	})
}

// paths returns the payload, tag and manifest paths, absolute, checked.
func (f *manifestFlags) paths() (dir, tag, mpath string, err error) {
	if f.dir == "" || f.tag == "" {
		return "", "", "", usagef("--dir and --tag must not be empty")
	}
	mpath = f.manifest
	if mpath == "" {
		mpath = f.tag + ".manifest"
	}
	out := []*string{&dir, &tag, &mpath}
	for i, p := range []string{f.dir, f.tag, mpath} {
		if *out[i], err = filepath.Abs(p); err != nil {
			return "", "", "", usagef("%q: %v", p, err)
		}
	}
	for _, p := range []string{tag, mpath} {
		if within(dir, p) {
			// The manifest would list itself, or a copy remove the tag.
			return "", "", "", usagef("%q lies inside the payload %q: keep it beside the directory", p, dir)
		}
	}
	if _, err := parseFormat(f.format); err != nil {
		return "", "", "", err
	}
	return dir, tag, mpath, nil
}

func runManifest(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	use := func(w io.Writer) {
		fmt.Fprint(w, `Usage:
  dualpart manifest write [--dir DIR] [--tag FILE] [--manifest FILE] [--version V]
                          [--name NAME] [--sign SECRET_KEY]
  dualpart manifest check [--dir DIR] [--tag FILE] [--manifest FILE]
                          [--keyring FILE|DIR] [--name NAME]

write records every entry of the payload (type, mode, size, SHA-256, link
target) and the version, so that a side shipped in a factory image reads as
ok, and is verified, from its first boot. check compares the payload with its
manifest, hashing every file, and the manifest's version with the tag's; with
--keyring, also its minisign signature and the pair name it carries.
Run "dualpart manifest write -h" for the flags.
`)
	}
	if len(args) == 0 {
		use(stderr)
		return exitUsage
	}
	switch args[0] {
	case "write":
		return runManifestWrite(ctx, args[1:], stdout, stderr)
	case "check":
		return runManifestCheck(ctx, args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		use(stdout)
		return exitOK
	}
	fmt.Fprintf(stderr, "dualpart manifest: unknown subcommand %q\n", args[0])
	use(stderr)
	return exitUsage
}

func runManifestWrite(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	const cmd = "manifest write"
	flags := flag.NewFlagSet(cmd, flag.ContinueOnError)
	var f manifestFlags
	f.register(flags, true)
	if st := parseFlags(flags, args, stderr); st >= 0 {
		return st
	}
	dir, tag, mpath, err := f.paths()
	if err != nil {
		return fail(stderr, cmd, err)
	}
	osfs := afero.NewOsFs()
	reader := versionReader(f.format)
	tagVersion, tagErr := readTagVersion(osfs, tag, reader)
	version := strings.Trim(f.version, " \t\r\n")
	switch {
	case version != "":
		v, err := reader.ReadVersion([]byte(version))
		if err != nil {
			return fail(stderr, cmd, usagef("--version: %v", err))
		}
		if tagErr == nil && tagVersion.Compare(v) != 0 {
			fmt.Fprintf(stderr, "dualpart %s: warning: the tag %q says %s: the side reads as unverified until it says %s\n",
				cmd, tag, tagVersion, version)
		}
	case errors.Is(tagErr, fs.ErrNotExist):
		return fail(stderr, cmd, usagef("no --version given and no tag %q to take it from", tag))
	case tagErr != nil:
		return fail(stderr, cmd, tagErr)
	default:
		version = tagVersion.String()
	}
	var secret []byte
	if f.sign != "" {
		if f.name == "" {
			f.name = backup.DefaultName
		}
		if secret, err = readFileLimited(osfs, f.sign, signature.MaxSize); err != nil {
			return fail(stderr, cmd, usagef("--sign: %v", err))
		}
	}
	if f.name != "" {
		if err := manifest.ValidName(f.name); err != nil {
			return fail(stderr, cmd, usagef("--name: %v", err))
		}
	}
	m, err := writeManifest(ctx, osfs, dir, mpath, version, f.name)
	if err != nil {
		return fail(stderr, cmd, err)
	}
	signed := ""
	if secret != nil {
		id, err := signManifest(osfs, mpath, m, secret)
		if err != nil {
			return fail(stderr, cmd, err)
		}
		signed = fmt.Sprintf(", signed for pair %q by key %s", f.name, id)
	}
	fmt.Fprintf(stderr, "dualpart %s: wrote %q: version %s, %s%s\n", cmd, mpath, version, summary(m), signed)
	return exitOK
}

// writeManifest reads every file of the payload at dir (a full read: the
// manifest is what later verifications trust) and writes its manifest,
// atomically and durably, at mpath.
func writeManifest(ctx context.Context, fsys afero.Fs, dir, mpath, version, name string) (*manifest.Manifest, error) {
	entries, err := manifest.Scan(ctx, fsys, dir, true)
	if err != nil {
		return nil, fmt.Errorf("read payload %q: %w", dir, err)
	}
	m := &manifest.Manifest{Version: version, Name: name, Entries: entries}
	if _, err := durable.MkdirAll(fsys, filepath.Dir(mpath), 0o755, durable.Hooks{}); err != nil {
		return nil, err
	}
	if err := durable.WriteFileFrom(fsys, mpath, 0o644, durable.Hooks{}, m); err != nil {
		return nil, err
	}
	return m, nil
}

func runManifestCheck(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	const cmd = "manifest check"
	flags := flag.NewFlagSet(cmd, flag.ContinueOnError)
	var f manifestFlags
	f.register(flags, false)
	if st := parseFlags(flags, args, stderr); st >= 0 {
		return st
	}
	dir, tag, mpath, err := f.paths()
	if err != nil {
		return fail(stderr, cmd, err)
	}
	osfs := afero.NewOsFs()
	data, err := readFileLimited(osfs, mpath, manifest.MaxSize)
	if err != nil {
		return fail(stderr, cmd, fmt.Errorf("read manifest: %w", err))
	}
	m, err := manifest.Parse(data)
	if err != nil {
		return fail(stderr, cmd, fmt.Errorf("read manifest %q: %w", mpath, err))
	}
	signed, err := checkSignature(osfs, f, mpath, m, data)
	if err != nil {
		return fail(stderr, cmd, err)
	}
	if err := manifest.Check(ctx, osfs, dir, m.Entries, true); err != nil {
		return fail(stderr, cmd, fmt.Errorf("payload %q does not match %q: %w", dir, mpath, err))
	}
	reader := versionReader(f.format)
	tagVersion, err := readTagVersion(osfs, tag, reader)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		fmt.Fprintf(stderr, "dualpart %s: %q matches %q: version %s, %s; no tag %q yet, so the side reads as missing\n",
			cmd, dir, mpath, m.Version, summary(m), tag)
		return exitOK
	case err != nil:
		return fail(stderr, cmd, err)
	}
	mv, err := reader.ReadVersion([]byte(m.Version))
	if err != nil || mv.Compare(tagVersion) != 0 {
		return fail(stderr, cmd, fmt.Errorf("payload %q matches %q, but the manifest is for version %q and the tag %q says %s: the side reads as unverified",
			dir, mpath, m.Version, tag, tagVersion))
	}
	fmt.Fprintf(stderr, "dualpart %s: %q matches %q: version %s, %s, every file's SHA-256 checked%s\n",
		cmd, dir, mpath, m.Version, summary(m), signed)
	return exitOK
}

// checkSignature is manifest check --keyring: the signature of the bytes
// data (the manifest m, read from mpath) by a key of the keyring, and the
// pair name m carries. It returns what to add to the summary line.
func checkSignature(fsys afero.Fs, f manifestFlags, mpath string, m *manifest.Manifest, data []byte) (string, error) {
	if len(f.keyring) == 0 {
		return "", nil
	}
	k, err := backup.ReadKeyring(fsys, f.keyring...)
	if err != nil {
		return "", usagef("%v", err)
	}
	spath := mpath + backup.SignatureSuffix
	sig, err := readFileLimited(fsys, spath, signature.MaxSize)
	if err != nil {
		return "", fmt.Errorf("%w: signature: %v", backup.ErrUntrusted, err)
	}
	if err := k.Verify(data, sig); err != nil {
		return "", fmt.Errorf("%q: %w", spath, err)
	}
	if m.Name != f.name {
		return "", fmt.Errorf("%w: %q is signed for pair %q, not %q", backup.ErrUntrusted, mpath, m.Name, f.name)
	}
	return fmt.Sprintf("; signed for pair %q by a key of the keyring", m.Name), nil
}

// signManifest signs the manifest m written at mpath with a minisign
// secret key and writes the signature beside it, durably. It returns the
// key's ID.
func signManifest(fsys afero.Fs, mpath string, m *manifest.Manifest, secret []byte) (string, error) {
	comment := fmt.Sprintf("dualpart manifest: pair %s, version %s", m.Name, m.Version)
	sig, id, err := signature.Sign(secret, bytes.NewReader(m.Marshal()), comment)
	if err != nil {
		return "", usagef("--sign: %v", err)
	}
	if err := durable.WriteFile(fsys, mpath+backup.SignatureSuffix, sig, 0o644, durable.Hooks{}); err != nil {
		return "", err
	}
	return id, nil
}

// readTagVersion reads and parses a tag; an error wrapping fs.ErrNotExist
// means there is none.
func readTagVersion(fsys afero.Fs, tag string, r backup.VersionReader) (backup.Version, error) {
	data, err := readFileLimited(fsys, tag, backup.MaxTagSize)
	if err != nil {
		return nil, fmt.Errorf("read tag: %w", err)
	}
	v, err := r.ReadVersion(data)
	if err != nil {
		return nil, fmt.Errorf("read tag %q: %w", tag, err)
	}
	return v, nil
}

// readFileLimited reads a file that must be no larger than max: a tag or a
// manifest read from flash, where a garbled size must not exhaust memory.
// It must be a regular file, not reached through a final symlink: a FIFO
// planted there is refused at once rather than block the command.
func readFileLimited(fsys afero.Fs, name string, max int64) ([]byte, error) {
	f, err := nofollow.Open(fsys, name)
	if err != nil {
		return nil, err // *PathError: names the path
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("read %q: %w", name, err)
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%q is larger than %d bytes", name, max)
	}
	return data, nil
}

func summary(m *manifest.Manifest) string {
	var files int
	var bytes int64
	for _, e := range m.Entries {
		if e.Type == manifest.File {
			files++
			bytes += e.Size
		}
	}
	return fmt.Sprintf("%d entries, %d files, %s", len(m.Entries), files, formatBytes(bytes))
}
