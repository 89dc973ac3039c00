package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"path/filepath"

	"github.com/dualpart/backup"
	"github.com/dualpart/backup/internal/manifest"
	"github.com/spf13/afero"
)

// runInstall is `dualpart install --from DIR --version V`: the library's
// Install on one pair, with the side flags of reconcile, the same exit
// statuses and the same --json object.
func runInstall(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("install", flag.ContinueOnError)
	var f pairFlags
	f.register(fs)
	from := fs.String("from", "", "the new payload's `DIR` (required)")
	version := fs.String("version", "", "the new payload's `VERSION`, in the tag format (required without --manifest)")
	mpath := fs.String("manifest", "", "the new version's manifest `FILE` (dualpart manifest write --name --sign), its signature beside it (FILE.minisig): the version is the manifest's, and a payload that does not match it is refused; required with --keyring")
	downgrade := fs.Bool("downgrade", false, "allow a version that is not newer than the current one")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: dualpart install --from DIR (--version V | --manifest FILE) [flags]\n\n"+
			"Installs the payload in DIR as version V: the pair is reconciled first, then the\n"+
			"primary is updated (its tag removed, what differs written, manifest, tag), then\n"+
			"the backup. A power cut leaves the old or the new version, whole, for the next\n"+
			"reconcile. A version not newer than the current one is refused unless --downgrade.\n\n")
		fs.PrintDefaults()
	}
	if st := parseFlags(fs, args, stderr); st >= 0 {
		return st
	}
	if *from == "" || (*version == "" && *mpath == "") {
		return fail(stderr, "install", usagef("--from and --version (or --manifest) are required"))
	}
	if f.config != "" {
		return fail(stderr, "install", usagef("--config cannot be used with install: it installs one pair"))
	}
	specs, err := f.specs(fs)
	if err != nil {
		return fail(stderr, "install", err)
	}
	spec := specs[0]
	if *mpath != "" {
		return installManifest(ctx, f, spec, *from, *mpath, *version, *downgrade, stdout, stderr)
	}
	v, err := versionReader(spec.Format).ReadVersion([]byte(*version))
	if err != nil {
		return fail(stderr, "install", usagef("--version: %v", err))
	}
	dir, err := fromDir(*from, spec)
	if err != nil {
		return fail(stderr, "install", err)
	}
	p := spec.pair(f.logger(stderr, spec), backup.WithDowngrade(*downgrade))
	o := outcome{cmd: "install", spec: spec}
	o.res, o.err = p.Install(ctx, afero.NewOsFs(), dir, v)
	if !o.report(stdout, stderr, o.installLine(v), f.json) {
		return exitFailed
	}
	return o.exit()
}

// fromDir checks install's --from against the pair's payloads.
func fromDir(from string, spec pairSpec) (string, error) {
	dir, err := filepath.Abs(from)
	if err != nil {
		return "", usagef("--from: %v", err)
	}
	for _, p := range []string{spec.Primary, spec.Backup} {
		if within(dir, p) || within(p, dir) {
			return "", usagef("--from %q overlaps the payload %q", dir, p)
		}
	}
	return dir, nil
}

// installManifest is install --manifest: the library's InstallManifest,
// which takes the version from the manifest (signed, on a pair with a
// keyring) and refuses a payload that does not match it.
func installManifest(ctx context.Context, f pairFlags, spec pairSpec, from, mpath, version string, downgrade bool,
	stdout, stderr io.Writer) int {
	dir, err := fromDir(from, spec)
	if err != nil {
		return fail(stderr, "install", err)
	}
	if mpath, err = filepath.Abs(mpath); err != nil {
		return fail(stderr, "install", usagef("--manifest: %v", err))
	}
	if within(dir, mpath) {
		return fail(stderr, "install", usagef("--manifest %q lies inside --from %q: keep it beside the payload", mpath, dir))
	}
	// The manifest's version, for the messages and to match --version:
	// the library reads it again, with its signature, to install it.
	data, err := readFileLimited(afero.NewOsFs(), mpath, manifest.MaxSize)
	var m *manifest.Manifest
	if err == nil {
		m, err = manifest.Parse(data)
	}
	if err != nil {
		return fail(stderr, "install", fmt.Errorf("--manifest %q: %w", mpath, err))
	}
	v, err := versionReader(spec.Format).ReadVersion([]byte(m.Version))
	if err != nil {
		return fail(stderr, "install", fmt.Errorf("--manifest %q: version %q: %w", mpath, m.Version, err))
	}
	if version != "" {
		if w, err := versionReader(spec.Format).ReadVersion([]byte(version)); err != nil || w.Compare(v) != 0 {
			return fail(stderr, "install", usagef("--version %q, but the manifest %q is for version %s", version, mpath, v))
		}
	}
	p := spec.pair(f.logger(stderr, spec), backup.WithDowngrade(downgrade))
	o := outcome{cmd: "install", spec: spec}
	o.res, o.err = p.InstallManifest(ctx, afero.NewOsFs(), dir, mpath)
	if !o.report(stdout, stderr, o.installLine(v), f.json) {
		return exitFailed
	}
	return o.exit()
}
