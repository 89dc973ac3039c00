package manifest

// An Option changes what Scan, ScanAll, Check and Mismatches look at.
// Options are applied in order; the last one of a kind wins.
type Option interface{ apply(*config) }

type config struct {
	exclude *Exclude
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

func newConfig(opts []Option) config {
	var c config
	for _, o := range opts {
		o.apply(&c)
	}
	return c
}

// WithExclude leaves the entries x matches alone: a scan neither lists
// nor opens nor stats them (a named pipe among them is no error) and does
// not descend into an excluded directory; a check neither compares nor
// reports them, whether the payload holds them or the manifest lists
// them. A nil x excludes nothing.
func WithExclude(x *Exclude) Option {
	return optionFunc(func(c *config) { c.exclude = x })
}
