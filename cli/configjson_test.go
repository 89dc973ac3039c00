package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// oraclePair is a pair as encoding/json reads it: reserve may be a string
// or a number.
type oraclePair struct {
	Name string `json:"name"`
	pairPaths
	Verify   *string         `json:"verify"`
	Format   *string         `json:"version-format"`
	Reserve  json.RawMessage `json:"reserve"`
	Fallback *bool           `json:"fallback"`
	Exclude  []string        `json:"exclude"`
}

// oracle decodes a config file with encoding/json as strictly as it can be
// made to: unknown fields refused (DisallowUnknownFields), keys matched
// exactly (encoding/json folds case, so a second decode into maps checks
// them against oraclePair's tags), nothing but white space after the
// object. decodeConfig must refuse what it refuses, and read the same where
// both accept; it is stricter still (null, a repeated key, a fractional
// reserve, invalid UTF-8).
func oracle(data []byte) (configFile, error) {
	var f struct {
		Pairs []oraclePair `json:"pairs"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return configFile{}, err
	}
	if len(bytes.TrimLeft(data[dec.InputOffset():], " \t\r\n")) > 0 {
		return configFile{}, errors.New("data after the JSON object")
	}
	var top map[string]json.RawMessage
	var pairs []map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return configFile{}, err
	}
	if raw, ok := top["pairs"]; ok {
		if err := json.Unmarshal(raw, &pairs); err != nil {
			return configFile{}, err
		}
	}
	keys := jsonKeys(reflect.TypeFor[oraclePair]())
	for k := range top {
		if k != "pairs" {
			return configFile{}, fmt.Errorf("key %q is not exactly %q", k, "pairs")
		}
	}
	for _, p := range pairs {
		for k := range p {
			if !keys[k] {
				return configFile{}, fmt.Errorf("key %q is not exactly a pair's key", k)
			}
		}
	}
	var cf configFile
	if f.Pairs != nil {
		cf.Pairs = []configPair{}
	}
	for _, p := range f.Pairs {
		c := configPair{Name: p.Name, pairPaths: p.pairPaths, Verify: p.Verify, Format: p.Format, Fallback: p.Fallback, Exclude: p.Exclude}
		if len(p.Reserve) > 0 {
			var s string
			if err := json.Unmarshal(p.Reserve, &s); err != nil {
				var n json.Number
				if err := json.Unmarshal(p.Reserve, &n); err != nil {
					return configFile{}, fmt.Errorf("reserve: want a string or a number, not %s", p.Reserve)
				}
				s = n.String()
			}
			c.Reserve = &s
		}
		cf.Pairs = append(cf.Pairs, c)
	}
	return cf, nil
}

// jsonKeys are the keys encoding/json reads into t, embedded fields' too.
func jsonKeys(t reflect.Type) map[string]bool {
	keys := make(map[string]bool)
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous {
			maps.Copy(keys, jsonKeys(f.Type))
		} else {
			keys[f.Tag.Get("json")] = true
		}
	}
	return keys
}

// written is cf as encoding/json writes it, compact and indented, leaving
// unset fields out: decodeConfig must read every one back as cf.
func written(t *testing.T, cf configFile) [][]byte {
	t.Helper()
	type pair struct {
		Name string `json:"name"`
		pairPaths
		Verify   *string  `json:"verify,omitempty"`
		Format   *string  `json:"version-format,omitempty"`
		Reserve  *string  `json:"reserve,omitempty"`
		Fallback *bool    `json:"fallback,omitempty"`
		Exclude  []string `json:"exclude,omitempty"`
	}
	var f struct {
		Pairs *[]pair `json:"pairs,omitempty"`
	}
	if cf.Pairs != nil {
		ps := []pair{}
		for _, p := range cf.Pairs {
			ps = append(ps, pair{p.Name, p.pairPaths, p.Verify, p.Format, p.Reserve, p.Fallback, p.Exclude})
		}
		f.Pairs = &ps
	}
	compact, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	indented, err := json.MarshalIndent(f, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	return [][]byte{compact, indented}
}

func ptr[T any](v T) *T { return &v }

// pairsEmbedded lets cmp look into configPair's embedded pairPaths.
var pairsEmbedded = cmp.AllowUnexported(configPair{})

func TestDecodeConfig(t *testing.T) {
	paths := `"primary": "/a", "primary-tag": "/a.txt", "backup": "/b", "backup-tag": "/b.txt"`
	ab := pairPaths{Primary: "/a", PrimaryTag: "/a.txt", Backup: "/b", BackupTag: "/b.txt"}
	tests := []struct {
		name, data string
		want       configFile
	}{
		{"one pair", `{"pairs": [{` + paths + `}]}`, configFile{Pairs: []configPair{{pairPaths: ab}}}},
		{"every field", `{"pairs": [{"name": "app", ` + paths + `, "verify": "full", "version-format": "semver",
			"reserve": "60M", "fallback": true}]}`,
			configFile{Pairs: []configPair{{Name: "app", pairPaths: ab, Verify: ptr("full"), Format: ptr("semver"),
				Reserve: ptr("60M"), Fallback: ptr(true)}}}},
		{"two pairs", `{"pairs": [{"name": "a"}, {"fallback": false}]}`, configFile{Pairs: []configPair{{Name: "a"}, {Fallback: ptr(false)}}}},
		{"reserve as a number", `{"pairs": [{"reserve": 1048576}]}`, configFile{Pairs: []configPair{{Reserve: ptr("1048576")}}}},
		{"reserve zero", `{"pairs": [{"reserve": 0}]}`, configFile{Pairs: []configPair{{Reserve: ptr("0")}}}},
		{"escapes", `{"pairs": [{"name": "\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00\u003c"}]}`, configFile{Pairs: []configPair{{Name: "\"\\/\b\f\n\r\té😀<"}}}},
		{"UTF-8", `{"pairs": [{"name": "é😀"}]}`, configFile{Pairs: []configPair{{Name: "é😀"}}}},
		{"white space", " \t\r\n{ \"pairs\" : [ { } , {\n} ] } \n", configFile{Pairs: []configPair{{}, {}}}},
		{"no pairs", `{"pairs": []}`, configFile{Pairs: []configPair{}}},
		{"empty", `{}`, configFile{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeConfig([]byte(tc.data))
			if err != nil {
				t.Fatalf("decodeConfig(%s) = %v", tc.data, err)
			}
			if diff := cmp.Diff(tc.want, got, pairsEmbedded); diff != "" {
				t.Errorf("decodeConfig(%s) (-want +got):\n%s", tc.data, diff)
			}
			o, err := oracle([]byte(tc.data))
			if err != nil {
				t.Fatalf("encoding/json: %v", err)
			}
			if diff := cmp.Diff(o, got, pairsEmbedded); diff != "" {
				t.Errorf("decodeConfig(%s), against encoding/json (-json +decodeConfig):\n%s", tc.data, diff)
			}
		})
	}
}

func TestDecodeConfigRejects(t *testing.T) {
	tests := []struct {
		name, data, want string
		oracleAccepts    bool // a rule of decodeConfig's own, stricter than the oracle
	}{
		{"empty", ``, "line 1, column 1: want an object, found the end of the file", false},
		{"null", `null`, "line 1, column 1: want an object, found null", true},
		{"array", `[]`, "line 1, column 1: want an object, found '['", false},
		{"unknown field", `{"pairs": [{"fallbak": true}]}`, `line 1, column 13: pair #1: unknown field "fallbak"`, false},
		{"unknown top-level field", `{"pair": []}`, `line 1, column 2: unknown field "pair"`, false},
		{"key in another case", "{\"pairs\": [\n {\"Primary\": \"/a\"}]}", `line 2, column 3: pair #1: unknown field "Primary"`, false},
		{"top-level key in another case", `{"Pairs": []}`, `line 1, column 2: unknown field "Pairs"`, false},
		{"repeated key", "{\"pairs\": [{},\n  {\"name\": \"a\", \"name\": \"b\"}]}", `line 2, column 17: pair #2: duplicate key "name"`, true},
		{"repeated pairs", `{"pairs": [], "pairs": []}`, `line 1, column 15: duplicate key "pairs"`, true},
		{"pairs null", `{"pairs": null}`, `line 1, column 11: "pairs": want an array, found null`, true},
		{"pair null", `{"pairs": [null]}`, "line 1, column 12: pair #1: want an object, found null", true},
		{"string null", `{"pairs": [{"name": null}]}`, `line 1, column 21: pair #1 "name": want a string, found null`, true},
		{"fallback null", `{"pairs": [{"fallback": null}]}`, `line 1, column 25: pair #1 "fallback": want true or false, found null`, true},
		{"reserve null", `{"pairs": [{"reserve": null}]}`, `line 1, column 24: pair #1 "reserve": want a string such as "60M" or a whole number of bytes, found null`, true},
		{"pairs an object", `{"pairs": {}}`, `line 1, column 11: "pairs": want an array, found '{'`, false},
		{"pair an array", `{"pairs": [[]]}`, "line 1, column 12: pair #1: want an object, found '['", false},
		{"path a number", `{"pairs": [{"primary": 1}]}`, `line 1, column 24: pair #1 "primary": want a string, found '1'`, false},
		{"verify a bool", `{"pairs": [{"verify": true}]}`, `line 1, column 23: pair #1 "verify": want a string, found 't'`, false},
		{"fallback a string", `{"pairs": [{"fallback": "yes"}]}`, `line 1, column 25: pair #1 "fallback": want true or false, found '"'`, false},
		{"reserve a bool", `{"pairs": [{"reserve": true}]}`, `found 't'`, false},
		{"reserve negative", `{"pairs": [{"reserve": -1}]}`, `line 1, column 24: pair #1 "reserve": want a string such as "60M" or a whole number of bytes, found -1`, true},
		{"reserve a fraction", `{"pairs": [{"reserve": 1.5}]}`, `line 1, column 24: pair #1 "reserve": want a string such as "60M" or a whole number of bytes, found 1.5`, true},
		{"reserve an exponent", `{"pairs": [{"reserve": 1e6}]}`, `column 24: pair #1 "reserve": want a string such as "60M" or a whole number of bytes, found 1e6`, true},
		{"reserve leading zero", `{"pairs": [{"reserve": 01}]}`, `column 24: pair #1 "reserve": want a string such as "60M" or a whole number of bytes, found 01`, false},
		{"two objects", `{"pairs": []} {}`, "line 1, column 15: data after the config's object", false},
		{"closing bracket after", `{"pairs": []} ]`, "line 1, column 15: data after the config's object", false},
		{"trailing comma", `{"pairs": [],}`, "line 1, column 14: want a key, found '}'", false},
		{"trailing comma in pairs", `{"pairs": [{},]}`, "line 1, column 15: pair #2: want an object, found ']'", false},
		{"missing comma", `{"pairs": [{} {}]}`, `line 1, column 15: "pairs": want "," or "]", found '{'`, false},
		{"missing colon", `{"pairs" []}`, `line 1, column 10: "pairs": want ":", found '['`, false},
		{"missing brace", `{"pairs": [] "x": 1}`, `line 1, column 14: want "," or "}", found '"'`, false},
		{"unclosed", `{"pairs": [`, "line 1, column 12: pair #1: want an object, found the end of the file", false},
		{"unterminated string", `{"pairs": [{"name": "a`, `line 1, column 23: pair #1 "name": unterminated string`, false},
		{"bad literal", `{"pairs": [{"fallback": tru}]}`, "want true or false, found 't'", false},
		{"literal run on", `{"pairs": [{"fallback": truex}]}`, `line 1, column 29: pair #1: want "," or "}", found 'x'`, false},
		{"control character", "{\"pairs\": [{\"name\": \"a\tb\"}]}", `line 1, column 23: pair #1 "name": control character '\t' in a string: escape it`, false},
		{"invalid UTF-8", "{\"pairs\": [{\"name\": \"a\xffb\"}]}", `line 1, column 23: pair #1 "name": invalid UTF-8 in a string`, true},
		{"invalid UTF-8 in a key", "{\"pairs\": [{\"n\xffme\": \"\"}]}", `line 1, column 15: pair #1: invalid UTF-8 in a string`, false},
		{"bad escape", `{"pairs": [{"name": "\x"}]}`, `line 1, column 22: pair #1 "name": invalid escape in a string`, false},
		{"bad unicode escape", `{"pairs": [{"name": "\u12g4"}]}`, "invalid escape", false},
		{"short unicode escape", `{"pairs": [{"name": "\u12"}]}`, "invalid escape", false},
		{"lone surrogate", `{"pairs": [{"name": "\ud800x"}]}`, "line 1, column 22: pair #1 \"name\": invalid escape", true},
		{"lone low surrogate", `{"pairs": [{"name": "\udc00\ud800"}]}`, "invalid escape", true},
		{"backslash at the end", `{"pairs": [{"name": "\`, "invalid escape", false},
		{"byte order mark", "\ufeff{}", `line 1, column 1: want an object, found '\ufeff'`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeConfig([]byte(tc.data))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("decodeConfig(%s) = %v, want an error saying %q", tc.data, err, tc.want)
			}
			if _, err := oracle([]byte(tc.data)); (err == nil) != tc.oracleAccepts {
				t.Errorf("oracle(%s) = %v; want it to accept: %v", tc.data, err, tc.oracleAccepts)
			}
		})
	}
}

// FuzzDecodeConfig holds decodeConfig to encoding/json: it accepts nothing
// that encoding/json refuses, reads the same pairs where both accept, and
// reads back every config that encoding/json accepts as encoding/json
// writes it.
func FuzzDecodeConfig(f *testing.F) {
	for _, s := range []string{
		`{"pairs": [{"name": "app", "primary": "/a", "primary-tag": "/a.txt", "backup": "/b", "backup-tag": "/b.txt", "reserve": "60M"}]}`,
		`{"pairs": [{"verify": "full", "version-format": "semver", "reserve": 4096, "fallback": true}, {"fallback": false}]}`,
		`{"pairs": [{"name": "\u00e9\ud83d\ude00\"\\\/\b\f\n\r\t", "reserve": 0}]}`,
		"\t{ \"pairs\" :\r\n[ ] }\n",
		`{}`, `null`, `[]`, `{"pairs": []} x`, `{"Pairs": []}`, `{"pairs": [{"name": "a", "name": "b"}]}`,
		`{"pairs": [{"reserve": -1.5e+3}]}`, `{"pairs": [null, {"verify": null}]}`, "{\"pairs\": [{\"name\": \"\xff\"}]}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := decodeConfig(data)
		want, oerr := oracle(data)
		switch {
		case err != nil && !strings.HasPrefix(err.Error(), "line "):
			t.Errorf("decodeConfig(%q) = %v, want an error that starts with its line", data, err)
		case err == nil && oerr != nil:
			t.Fatalf("decodeConfig(%q) accepts what encoding/json refuses: %v", data, oerr)
		case err == nil:
			if diff := cmp.Diff(want, got, pairsEmbedded); diff != "" {
				t.Errorf("decodeConfig(%q) (-json +decodeConfig):\n%s", data, diff)
			}
		}
		if oerr != nil {
			return
		}
		for _, w := range written(t, want) {
			got, err := decodeConfig(w)
			if err != nil {
				t.Fatalf("decodeConfig(%s), as encoding/json writes %q: %v", w, data, err)
			}
			if diff := cmp.Diff(want, got, pairsEmbedded); diff != "" {
				t.Errorf("decodeConfig(%s), as encoding/json writes %q (-json +decodeConfig):\n%s", w, data, diff)
			}
		}
	})
}
