package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"path/filepath"

	"github.com/dualpart/backup"
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
	version := fs.String("version", "", "the new payload's `VERSION`, in the tag format (required)")
	downgrade := fs.Bool("downgrade", false, "allow a version that is not newer than the current one")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: dualpart install --from DIR --version V [flags]\n\n"+
			"Installs the payload in DIR as version V: the pair is reconciled first, then the\n"+
			"primary is updated (its tag removed, what differs written, manifest, tag), then\n"+
			"the backup. A power cut leaves the old or the new version, whole, for the next\n"+
			"reconcile. A version not newer than the current one is refused unless --downgrade.\n\n")
		fs.PrintDefaults()
	}
	if st := parseFlags(fs, args, stderr); st >= 0 {
		return st
	}
	if *from == "" || *version == "" {
		return fail(stderr, "install", usagef("--from and --version are required"))
	}
	if f.config != "" {
		return fail(stderr, "install", usagef("--config cannot be used with install: it installs one pair"))
	}
	specs, err := f.specs(fs)
	if err != nil {
		return fail(stderr, "install", err)
	}
	spec := specs[0]
	v, err := versionReader(spec.Format).ReadVersion([]byte(*version))
	if err != nil {
		return fail(stderr, "install", usagef("--version: %v", err))
	}
	dir, err := filepath.Abs(*from)
	if err != nil {
		return fail(stderr, "install", usagef("--from: %v", err))
	}
	for _, p := range []string{spec.Primary, spec.Backup} {
		if within(dir, p) || within(p, dir) {
			return fail(stderr, "install", usagef("--from %q overlaps the payload %q", dir, p))
		}
	}
	p := spec.pair(f.logger(stderr, spec), backup.WithDowngrade(*downgrade))
	o := outcome{cmd: "install", spec: spec}
	o.res, o.err = p.Install(ctx, afero.NewOsFs(), dir, v)
	if !o.report(stdout, stderr, o.installLine(v), f.json) {
		return exitFailed
	}
	return o.exit()
}
