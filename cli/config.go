package cli

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// maxConfigSize bounds the --config file: a list of a few pairs, read at
// boot from flash, where a garbled file must not exhaust memory.
const maxConfigSize = 1 << 20

// configFile is the --config file: several pairs (the app, a parameter
// directory, ...), reconciled in order. Each pair has the fields of the
// command line flags, under the same names:
//
//	{"pairs": [
//	  {"name": "app",
//	   "primary": "/usrapp/apprun/apps", "primary-tag": "/usrapp/apprun/app_ver.txt",
//	   "backup": "/usrdata/appbackup/apps", "backup-tag": "/usrdata/appbackup/app_ver.txt",
//	   "reserve": "60M"},
//	  {"name": "params",
//	   "primary": "/usrapp/params", "primary-tag": "/usrapp/params_ver.txt",
//	   "backup": "/usrdata/paramsbackup/params", "backup-tag": "/usrdata/paramsbackup/params_ver.txt",
//	   "verify": "full"}
//	]}
//
// The four paths are required; relative ones are taken from the config
// file's directory. "verify", "version-format", "reserve" (a SIZE string
// or a whole number of bytes) and "fallback" are optional and default to
// the command line's flags; "exclude", a list of payload-relative patterns
// (as --exclude), adds to those of the command line; "keyring", a public
// key file or a directory of them (as --keyring), replaces the command
// line's, and the pair's "name" is the name its signed manifests carry
// (default "app"). Unknown fields are an error: a misspelt
// "fallback" must not silently mean false. So are a key in another case, a
// key given twice and null. decodeConfig reads it; the tags name each
// field's key.
type configFile struct {
	Pairs []configPair `json:"pairs"`
}

type configPair struct {
	Name string `json:"name"`
	pairPaths
	Verify   *string  `json:"verify"`
	Format   *string  `json:"version-format"`
	Reserve  *string  `json:"reserve"` // a SIZE, from a JSON string or whole number
	Fallback *bool    `json:"fallback"`
	Exclude  []string `json:"exclude"` // payload-relative patterns, added to --exclude's
	Keyring  *string  `json:"keyring"` // a public key FILE or a DIR of *.pub, in place of --keyring's
}

// loadConfig reads the --config file. Every error is a usage error: the
// file is part of the command line.
func loadConfig(path string, def pairSettings) ([]pairSpec, error) {
	data, err := readConfig(path)
	if err != nil {
		return nil, usagef("config: %v", err)
	}
	cf, err := decodeConfig(data)
	if err != nil {
		return nil, usagef("config %q: %v", path, err)
	}
	if len(cf.Pairs) == 0 {
		return nil, usagef("config %q: no pairs", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, usagef("config %q: %v", path, err)
	}
	base := filepath.Dir(abs)
	specs := make([]pairSpec, 0, len(cf.Pairs))
	for i, p := range cf.Pairs {
		set := pairSettings{Verify: p.Verify, Format: p.Format, Reserve: p.Reserve, Fallback: p.Fallback}
		spec, err := resolve(p.Name, p.pairPaths, set, def, base)
		if err == nil {
			spec.Exclude, err = checkExclude(p.Exclude)
		}
		spec.PairName = p.Name
		if p.Keyring != nil {
			k := *p.Keyring
			if k != "" && !filepath.IsAbs(k) {
				k = filepath.Join(base, k)
			}
			spec.Keyring = []string{k}
		}
		if err != nil {
			return nil, usagef("config %q: pair %s: %v", path, pairName(p, i), err)
		}
		specs = append(specs, spec)
	}
	return specs, nil
}

func readConfig(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(io.LimitReader(f, maxConfigSize+1)); err != nil {
		return nil, fmt.Errorf("read %q: %w", path, err)
	}
	if b.Len() > maxConfigSize {
		return nil, fmt.Errorf("%q is larger than %d bytes", path, maxConfigSize)
	}
	return b.Bytes(), nil
}

func pairName(p configPair, i int) string {
	if p.Name != "" {
		return fmt.Sprintf("%q", p.Name)
	}
	return fmt.Sprintf("#%d", i+1)
}
