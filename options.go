package backup

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/dualpart/backup/internal/durable"
	"github.com/dualpart/backup/internal/manifest"
	"github.com/dualpart/backup/internal/testhooks"
)

// An Option configures a Pair. Options are applied in order after the
// defaults; where two set the same thing, the last one wins.
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// VerifyLevel says how much of a side is checked against its manifest.
type VerifyLevel int

const (
	// VerifyQuick checks every manifest entry's type, size, mode, owner
	// and link target by stat, the capabilities of files with an execute
	// bit, and that the payload holds nothing else. It reads no file
	// content: the default, cheap enough for every boot.
	VerifyQuick VerifyLevel = iota
	// VerifyNone reads the tags and manifests only: the vendor's behaviour.
	VerifyNone
	// VerifyFull is VerifyQuick plus the SHA-256 of every file: it finds a
	// flipped bit, at the cost of reading both payloads.
	VerifyFull
)

// String returns "quick", "none" or "full".
func (l VerifyLevel) String() string {
	switch l {
	case VerifyNone:
		return "none"
	case VerifyQuick:
		return "quick"
	case VerifyFull:
		return "full"
	}
	return "VerifyLevel(?)"
}

// Progress is reported after each entry a copy writes.
type Progress struct {
	Path         string // the entry just written, relative to the payload
	FilesWritten int    // entries written so far
	BytesWritten int64  // file bytes written so far
	FilesTotal   int    // entries the copy will write
	BytesTotal   int64  // file bytes the copy will write
}

type config struct {
	reader     VersionReader
	copier     Copier
	verify     VerifyLevel
	logger     *slog.Logger
	progress   func(Progress)
	reserve    int64
	fallback   bool
	sameDevErr bool
	downgrade  bool
	readBack   bool
	keyring    *Keyring          // WithKeyring: nil trusts every intact side
	name       string            // WithName: the name a signed manifest must carry
	nameErr    error             // WithName's error, kept apart so a later WithName clears it
	exclude    []string          // WithExclude's patterns, as given
	scan       []manifest.Option // the compiled exclude list, for every listing
	optErr     error             // an option's error, returned by every call
	hooks      durable.Hooks
	batch      batchLimit // zero: defaultBatch
	skipInval  bool       // test hook: do not invalidate the destination's tag
	tagFirst   bool       // test hook: write the tag before the manifest and payload syncs
}

// compile prepares what the options gave for use: the exclude patterns,
// whose error (a bad pattern) every call of the Pair then returns.
func (c *config) compile() {
	if c.nameErr != nil {
		c.optErr = c.nameErr
	}
	if len(c.exclude) == 0 {
		return
	}
	x, err := manifest.NewExclude(c.exclude)
	if err != nil {
		c.optErr = fmt.Errorf("exclude: %w: %v", ErrBadPath, err)
	}
	c.scan = []manifest.Option{manifest.WithExclude(x)}
}

func defaults() config {
	return config{
		reader:   DecimalReader{},
		copier:   DefaultCopier{},
		verify:   VerifyQuick,
		readBack: true,
		name:     DefaultName,
		logger:   slog.New(discard{}),
	}
}

// WithVersionReader sets the tag format. The default is DecimalReader.
func WithVersionReader(r VersionReader) Option {
	return optionFunc(func(c *config) { c.reader = r })
}

// WithCopier sets how a payload is copied. The default is DefaultCopier.
// Whatever the copier, the Pair invalidates the destination's tag before it
// runs, checks its result, and writes the manifest and tag after it.
func WithCopier(cp Copier) Option {
	return optionFunc(func(c *config) { c.copier = cp })
}

// WithVerify sets the verify level. The default is VerifyQuick.
func WithVerify(l VerifyLevel) Option {
	return optionFunc(func(c *config) { c.verify = l })
}

// WithLogger sets where the Pair logs what it finds and does. The default
// discards. Decisions are logged at Info, each entry written at Debug.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *config) { c.logger = l })
}

// WithProgress sets a callback called after each entry a copy writes, from
// the goroutine that called Reconcile.
func WithProgress(fn func(Progress)) Option {
	return optionFunc(func(c *config) { c.progress = fn })
}

// WithReserve keeps n bytes free on a copy's destination: a copy that would
// leave less is refused with ErrNoSpace before anything is written. Use 60
// MiB on usr_data when the vendor's FOTA upgrade is used. The default is 0.
func WithReserve(n int64) Option {
	return optionFunc(func(c *config) { c.reserve = n })
}

// WithFallback allows falling back to an older intact version when the
// newer side is damaged (or its version unreadable): the older version is
// then copied over it. This is a downgrade, so it is off by default, and the
// damaged newer side is then lost.
func WithFallback(allow bool) Option {
	return optionFunc(func(c *config) { c.fallback = allow })
}

// WithSameDeviceError makes Reconcile fail with ErrSameDevice, writing
// nothing, when both sides live on the same filesystem (where a pair
// protects against deletion only). By default that is a warning in the
// Result and the log.
func WithSameDeviceError(fail bool) Option {
	return optionFunc(func(c *config) { c.sameDevErr = fail })
}

// WithDowngrade allows Install to install a version that is not newer than
// the current one. Both sides then end at the version installed.
func WithDowngrade(allow bool) Option {
	return optionFunc(func(c *config) { c.downgrade = allow })
}

// WithReadBack sets whether a copy reads back every file it wrote from the
// medium (its cached pages dropped first, where the OS can) before the
// destination's tag vouches for it: a write the flash did not keep is then
// rewritten once, and a second failure fails the copy (ErrReadBack) with
// the tag not written. On by default: copies are rare, and a boot where
// both sides agree reads nothing extra. Off, a copy costs one read less of
// what it wrote.
func WithReadBack(on bool) Option {
	return optionFunc(func(c *config) { c.readBack = on })
}

// WithExclude keeps payload-relative paths out of the pair: an entry
// that matches a pattern is never listed, verified, copied or removed, on
// either side. This is for what the app changes at run time inside its
// payload (state, logs, caches), which would otherwise read as damage and
// be reverted from the other side. Patterns are slash-separated and
// relative to the payload, in path.Match syntax: one without a slash
// matches a name at any depth ("*.log"); one with a slash is anchored at
// the payload ("etc/app.conf"); "dir/" or "dir/**" matches a directory
// and everything below it; "**/" matches any number of directories. An
// invalid pattern (bad syntax, absolute, "..") makes every call of the
// Pair return an error wrapping ErrBadPath. Excluded entries below a
// directory the source lacks go with that directory when the copy
// removes it. Patterns add up over several WithExclude.
func WithExclude(patterns ...string) Option {
	return optionFunc(func(c *config) { c.exclude = append(c.exclude, patterns...) })
}

// The power-loss campaign (internal/campaign) disables protocol steps
// through internal/testhooks, to prove each step necessary. Only this
// module can reach it: no caller can weaken the protocol.
func init() {
	testhooks.Option = func(p testhooks.Protocol) any {
		return optionFunc(func(c *config) {
			c.hooks = durable.Hooks{SkipFileSync: p.SkipFileSync, SkipDirSync: p.SkipDirSync}
			c.skipInval, c.tagFirst = p.SkipInvalidate, p.TagFirst
			if p.BatchFiles > 0 {
				c.batch = batchLimit{files: p.BatchFiles, bytes: 1 << 40}
			}
		})
	}
}

type discard struct{}

func (discard) Enabled(context.Context, slog.Level) bool  { return false }
func (discard) Handle(context.Context, slog.Record) error { return nil }
func (d discard) WithAttrs([]slog.Attr) slog.Handler      { return d }
func (d discard) WithGroup(string) slog.Handler           { return d }
