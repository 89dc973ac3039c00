package cli

import (
	"flag"
	"io"
	"log/slog"
	"math"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/dualpart/backup"
	"github.com/dualpart/backup/internal/manifest"
	"github.com/spf13/afero"
)

// The vendor's layout on the module (DESIGN.md, "The field"): with no flags
// at all, reconcile serves it.
const (
	defaultPrimary    = "/usrapp/apprun/apps"
	defaultPrimaryTag = "/usrapp/apprun/app_ver.txt"
	defaultBackup     = "/usrdata/appbackup/apps"
	defaultBackupTag  = "/usrdata/appbackup/app_ver.txt"
)

// pairSpec is one pair, resolved and checked: what New needs.
type pairSpec struct {
	Name                                   string // for messages; empty: the primary's directory
	Primary, PrimaryTag, Backup, BackupTag string // absolute, clean
	Verify                                 backup.VerifyLevel
	Format                                 string // "int" or "semver"
	Reserve                                int64
	Fallback                               bool
	// NoReadBack is --read-back=false: a copy does not read back what
	// it wrote before the tag (the zero value reads back, the library's
	// default).
	NoReadBack bool
	Exclude    []string // payload-relative patterns, checked
	// Keyring is the public key files or directories of the pair's
	// keyring, absolute; empty: no keyring. keys is what they hold.
	Keyring []string
	Keys    *backup.Keyring
	// PairName is the name a signed manifest must carry: the config
	// entry's name, or --name; backup.DefaultName if neither.
	PairName string
}

func (s pairSpec) label() string {
	if s.Name != "" {
		return s.Name
	}
	return s.Primary
}

// protocolOptions is empty but in the power-cut harness's broken build
// (brokenprotocol.go, -tags dualpart_tagfirst); pair applies it last.
var protocolOptions []backup.Option

// pair returns the library's Pair for s, on the operating system's
// filesystem on both sides, so that the library's flock (beside the backup's
// tag) and its statfs free-space check apply.
func (s pairSpec) pair(logger *slog.Logger, extra ...backup.Option) *backup.Pair {
	opts := []backup.Option{
		backup.WithVerify(s.Verify),
		backup.WithVersionReader(versionReader(s.Format)),
		backup.WithReserve(s.Reserve),
		backup.WithFallback(s.Fallback),
		backup.WithReadBack(!s.NoReadBack),
		backup.WithExclude(s.Exclude...),
	}
	if s.PairName != "" {
		opts = append(opts, backup.WithName(s.PairName))
	}
	if s.Keys != nil {
		opts = append(opts, backup.WithKeyring(s.Keys))
	}
	if logger != nil {
		opts = append(opts, backup.WithLogger(logger))
	}
	opts = append(append(opts, extra...), protocolOptions...)
	osfs := afero.NewOsFs()
	return backup.New(
		backup.Side{Fs: osfs, Dir: s.Primary, Tag: s.PrimaryTag},
		backup.Side{Fs: osfs, Dir: s.Backup, Tag: s.BackupTag},
		opts...)
}

func versionReader(format string) backup.VersionReader {
	if format == "semver" {
		return backup.SemverReader{}
	}
	return backup.DecimalReader{}
}

// pairFlags are the flags of the commands that act on pairs: reconcile and
// status (and, later, install). register adds them to a command's FlagSet;
// specs turns them, or the --config file they name, into pairs.
type pairFlags struct {
	primary, primaryTag, backup, backupTag string
	verify, format, reserve                string
	fallback, readBack                     bool
	exclude                                []string
	keyring                                []string
	name                                   string
	config                                 string
	json                                   bool
	verbose                                bool
}

func (f *pairFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.primary, "primary", defaultPrimary, "primary payload `DIR`")
	fs.StringVar(&f.primaryTag, "primary-tag", defaultPrimaryTag, "primary version tag `FILE`")
	fs.StringVar(&f.backup, "backup", defaultBackup, "backup payload `DIR`")
	fs.StringVar(&f.backupTag, "backup-tag", defaultBackupTag, "backup version tag `FILE`")
	fs.StringVar(&f.verify, "verify", "quick", "verify `level`: none (tags only), quick (stat every entry) or full (also hash every file)")
	fs.StringVar(&f.format, "version-format", "int", "tag `format`: int (echo 4 > app_ver.txt) or semver")
	fs.StringVar(&f.reserve, "reserve", "0", "free space to keep on the destination, in bytes or with a K, M or G suffix (`SIZE`; 60M on usr_data for FOTA)")
	fs.BoolVar(&f.fallback, "fallback", false, "allow falling back to an older intact version when the newer one is damaged (a downgrade)")
	fs.BoolVar(&f.readBack, "read-back", true, "read every file a copy wrote back from the medium before writing the tag, and rewrite it once if it differs (false: trust the flash, copy faster)")
	fs.Func("exclude", "payload-relative `PATTERN` never listed, checked, copied or removed: what the app changes at run time (repeatable: 'data/', '*.log', 'cache/**')", func(v string) error {
		f.exclude = append(f.exclude, v)
		return nil
	})
	fs.Func("keyring", "minisign public key `FILE`, or a DIR whose every *.pub is read (repeatable): trust only sides whose manifest one of them signed (see README, Signed apps)", func(v string) error {
		if v == "" {
			return usagef("empty")
		}
		f.keyring = append(f.keyring, v)
		return nil
	})
	fs.StringVar(&f.name, "name", backup.DefaultName, "the pair's `NAME`, which a signed manifest must carry (with --config: each pair's name)")
	fs.StringVar(&f.config, "config", "", "JSON `FILE` listing several pairs, reconciled in order (see README)")
	fs.BoolVar(&f.json, "json", false, "print one JSON object per pair, one per line, on stdout")
	fs.BoolVar(&f.verbose, "verbose", false, "log what the library finds and does, each file written included, on stderr")
}

// specs returns the pairs to act on: the one the side flags name, or those
// of the --config file. With --config, the side flags are refused (a pair's
// paths come from one place only) and the other flags given on the command
// line are the defaults of every pair. --read-back applies to every pair
// (the config file has no key for it); --exclude's patterns are added to
// every pair's.
func (f *pairFlags) specs(fs *flag.FlagSet) ([]pairSpec, error) {
	set := make(map[string]bool)
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	def := pairSettings{Verify: &f.verify, Format: &f.format, Reserve: &f.reserve, Fallback: &f.fallback}
	var specs []pairSpec
	if f.config != "" {
		for _, n := range []string{"primary", "primary-tag", "backup", "backup-tag", "name"} {
			if set[n] {
				return nil, usagef("--%s cannot be combined with --config: the config file names every pair's paths", n)
			}
		}
		var err error
		if specs, err = loadConfig(f.config, def); err != nil {
			return nil, err
		}
	} else {
		paths := pairPaths{Primary: f.primary, PrimaryTag: f.primaryTag, Backup: f.backup, BackupTag: f.backupTag}
		spec, err := resolve("", paths, pairSettings{}, def, "")
		if err != nil {
			return nil, err
		}
		spec.PairName = f.name
		specs = []pairSpec{spec}
	}
	for i := range specs {
		specs[i].NoReadBack = !f.readBack
		x, err := checkExclude(append(specs[i].Exclude, f.exclude...))
		if err != nil {
			return nil, usagef("--exclude: %v", err)
		}
		specs[i].Exclude = x
		if err := specs[i].loadKeyring(f.keyring); err != nil {
			return nil, err
		}
	}
	return specs, nil
}

// loadKeyring checks the pair's name and reads its keyring: the config
// entry's, or else def (--keyring's). A keyring that cannot be read is a
// usage error: the pair must not run as if it had none.
func (s *pairSpec) loadKeyring(def []string) error {
	if s.PairName == "" {
		s.PairName = backup.DefaultName
	}
	if err := manifest.ValidName(s.PairName); err != nil {
		return usagef("pair %v", err)
	}
	if len(s.Keyring) == 0 {
		s.Keyring = def
	}
	if len(s.Keyring) == 0 {
		return nil
	}
	for i, k := range s.Keyring {
		abs, err := filepath.Abs(k)
		if err != nil {
			return usagef("keyring %q: %v", k, err)
		}
		s.Keyring[i] = abs
	}
	keys, err := backup.ReadKeyring(afero.NewOsFs(), s.Keyring...)
	if err != nil {
		return usagef("%v", err)
	}
	s.Keys = keys
	return nil
}

// checkExclude checks exclude patterns, so that a bad one is a usage error
// before anything is read.
func checkExclude(patterns []string) ([]string, error) {
	if _, err := manifest.NewExclude(patterns); err != nil {
		return nil, err
	}
	return patterns, nil
}

// pairPaths are a pair's four paths, as given.
type pairPaths struct {
	Primary    string `json:"primary"`
	PrimaryTag string `json:"primary-tag"`
	Backup     string `json:"backup"`
	BackupTag  string `json:"backup-tag"`
}

// pairSettings are a pair's other settings, as given; nil is unset.
type pairSettings struct {
	Verify   *string `json:"verify"`
	Format   *string `json:"version-format"`
	Reserve  *string `json:"reserve"`
	Fallback *bool   `json:"fallback"`
}

// resolve checks a pair as given and makes its paths absolute (relative
// ones against base, or the working directory if base is empty). Settings
// left nil in s take def's.
func resolve(name string, p pairPaths, s, def pairSettings, base string) (pairSpec, error) {
	spec := pairSpec{Name: name}
	paths := []struct {
		flag string
		in   string
		out  *string
	}{
		{"primary", p.Primary, &spec.Primary},
		{"primary-tag", p.PrimaryTag, &spec.PrimaryTag},
		{"backup", p.Backup, &spec.Backup},
		{"backup-tag", p.BackupTag, &spec.BackupTag},
	}
	for _, x := range paths {
		if x.in == "" {
			return spec, usagef("%s is empty", x.flag)
		}
		path := x.in
		if !filepath.IsAbs(path) && base != "" {
			path = filepath.Join(base, path)
		}
		abs, err := filepath.Abs(path)
		if err != nil {
			return spec, usagef("%s %q: %v", x.flag, x.in, err)
		}
		*x.out = abs
	}
	// backup.New panics on these: the copy would delete or overwrite the
	// tag (or the manifest beside it) as an entry the source lacks.
	for _, c := range [][2]string{{spec.Primary, spec.PrimaryTag}, {spec.Backup, spec.BackupTag}} {
		if within(c[0], c[1]) {
			return spec, usagef("tag %q lies inside its payload %q: keep the tag beside the directory, not in it", c[1], c[0])
		}
	}
	if spec.Primary == spec.Backup || within(spec.Primary, spec.Backup) || within(spec.Backup, spec.Primary) {
		return spec, usagef("payloads %q and %q overlap", spec.Primary, spec.Backup)
	}
	if spec.PrimaryTag == spec.BackupTag {
		return spec, usagef("primary and backup share the tag %q", spec.PrimaryTag)
	}
	pick := func(v, d *string) string {
		if v != nil {
			return *v
		}
		return *d
	}
	var err error
	if spec.Verify, err = parseVerify(pick(s.Verify, def.Verify)); err != nil {
		return spec, err
	}
	if spec.Format, err = parseFormat(pick(s.Format, def.Format)); err != nil {
		return spec, err
	}
	if spec.Reserve, err = parseSize(pick(s.Reserve, def.Reserve)); err != nil {
		return spec, err
	}
	spec.Fallback = *def.Fallback
	if s.Fallback != nil {
		spec.Fallback = *s.Fallback
	}
	return spec, nil
}

// within reports whether name is dir or lies below it; both are clean.
func within(dir, name string) bool {
	return name == dir || strings.HasPrefix(name, dir+string(filepath.Separator))
}

func parseVerify(s string) (backup.VerifyLevel, error) {
	for _, l := range []backup.VerifyLevel{backup.VerifyNone, backup.VerifyQuick, backup.VerifyFull} {
		if s == l.String() {
			return l, nil
		}
	}
	return 0, usagef("verify level %q: want none, quick or full", s)
}

func parseFormat(s string) (string, error) {
	switch s {
	case "int", "semver":
		return s, nil
	}
	return "", usagef("version format %q: want int or semver", s)
}

// parseSize reads a SIZE: a number of bytes, or a number followed by K, M
// or G (powers of 1024, either case): 0, 4096, 512k, 60M, 1G.
func parseSize(s string) (int64, error) {
	digits, shift := s, 0
	if n := len(s); n > 0 {
		switch s[n-1] {
		case 'k', 'K':
			shift = 10
		case 'm', 'M':
			shift = 20
		case 'g', 'G':
			shift = 30
		}
		if shift > 0 {
			digits = s[:n-1]
		}
	}
	n, err := strconv.ParseUint(digits, 10, 63)
	if err != nil {
		return 0, usagef("size %q: want bytes, or a number with a K, M or G suffix (60M)", s)
	}
	if n > math.MaxInt64>>shift {
		return 0, usagef("size %q is too large", s)
	}
	return int64(n) << shift, nil
}

// logger returns the library's logger for --verbose, or nil (discard).
func (f *pairFlags) logger(w io.Writer, spec pairSpec) *slog.Logger {
	if !f.verbose {
		return nil
	}
	h := slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})
	return slog.New(h).With("pair", spec.label())
}
