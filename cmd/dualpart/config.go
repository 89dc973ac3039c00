package main

import (
	"bytes"
	"encoding/json"
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
// or a number of bytes) and "fallback" are optional and default to the
// command line's flags. Unknown fields are an error: a misspelt "fallback"
// must not silently mean false.
type configFile struct {
	Pairs []configPair `json:"pairs"`
}

type configPair struct {
	Name string `json:"name"`
	pairPaths
	Verify   *string         `json:"verify"`
	Format   *string         `json:"version-format"`
	Reserve  json.RawMessage `json:"reserve"`
	Fallback *bool           `json:"fallback"`
}

// loadConfig reads the --config file. Every error is a usage error: the
// file is part of the command line.
func loadConfig(path string, def pairSettings) ([]pairSpec, error) {
	data, err := readConfig(path)
	if err != nil {
		return nil, usagef("config: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var cf configFile
	if err := dec.Decode(&cf); err != nil {
		return nil, usagef("config %q: %v", path, err)
	}
	if dec.More() {
		return nil, usagef("config %q: data after the JSON object", path)
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
		set := pairSettings{Verify: p.Verify, Format: p.Format, Fallback: p.Fallback}
		if len(p.Reserve) > 0 {
			r, err := sizeText(p.Reserve)
			if err != nil {
				return nil, usagef("config %q: pair %s: reserve: %v", path, pairName(p, i), err)
			}
			set.Reserve = &r
		}
		spec, err := resolve(p.Name, p.pairPaths, set, def, base)
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

// sizeText accepts a reserve written as a SIZE string ("60M") or a JSON
// number of bytes, and returns it as text for parseSize.
func sizeText(raw json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return "", fmt.Errorf("want a string such as \"60M\" or a number of bytes, not %s", raw)
	}
	return n.String(), nil
}

func pairName(p configPair, i int) string {
	if p.Name != "" {
		return fmt.Sprintf("%q", p.Name)
	}
	return fmt.Sprintf("#%d", i+1)
}
