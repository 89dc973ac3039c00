package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// oracle decodes a config file as the command did before decodeConfig,
// with encoding/json, plus decodeConfig's one extra rule: nothing but
// white space after the object.
func oracle(data []byte) (configFile, error) {
	type pair struct {
		Name string `json:"name"`
		pairPaths
		Verify   *string         `json:"verify"`
		Format   *string         `json:"version-format"`
		Reserve  json.RawMessage `json:"reserve"`
		Fallback *bool           `json:"fallback"`
	}
	var f struct {
		Pairs []pair `json:"pairs"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return configFile{}, err
	}
	if len(bytes.TrimLeft(data[dec.InputOffset():], " \t\r\n")) > 0 {
		return configFile{}, fmt.Errorf("data after the JSON object")
	}
	var cf configFile
	if f.Pairs != nil {
		cf.Pairs = []configPair{}
	}
	for _, p := range f.Pairs {
		c := configPair{Name: p.Name, pairPaths: p.pairPaths, Verify: p.Verify, Format: p.Format, Fallback: p.Fallback}
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
		{"reserve as a number", `{"pairs": [{"reserve": 1048576}]}`, configFile{Pairs: []configPair{{Reserve: ptr("1048576")}}}},
		{"reserve null", `{"pairs": [{"reserve": null}]}`, configFile{Pairs: []configPair{{Reserve: ptr("")}}}},
		{"nulls", `{"pairs": [{"name": null, "verify": null, "fallback": null}, null]}`, configFile{Pairs: []configPair{{}, {}}}},
		{"keys in any case", `{"Pairs": [{"NAME": "x", "Fallback": false}]}`, configFile{Pairs: []configPair{{Name: "x", Fallback: ptr(false)}}}},
		{"last of two wins", `{"pairs": [{"name": "a", "name": "b", "verify": "quick", "verify": null}]}`, configFile{Pairs: []configPair{{Name: "b"}}}},
		{"escapes", `{"pairs": [{"name": "\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00\ud800x"}]}`, configFile{Pairs: []configPair{{Name: "\"\\/\b\f\n\r\té😀\uFFFDx"}}}},
		{"invalid UTF-8", "{\"pairs\": [{\"name\": \"a\xffb\"}]}", configFile{Pairs: []configPair{{Name: "a\uFFFDb"}}}},
		{"white space", " \t\r\n{ \"pairs\" : [ ] } \n", configFile{Pairs: []configPair{}}},
		{"null", `null`, configFile{}},
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
	tests := []struct{ name, data, want string }{
		{"empty", ``, "EOF"},
		{"blank", " \n", "EOF"},
		{"array", `[]`, "cannot unmarshal an array"},
		{"string", `"x"`, "cannot unmarshal a string"},
		{"unknown field", `{"pairs": [{"fallbak": true}]}`, `pair #1: unknown field "fallbak"`},
		{"unknown top-level field", `{"pair": []}`, `unknown field "pair"`},
		{"pairs an object", `{"pairs": {}}`, "want an array"},
		{"pair an array", `{"pairs": [[]]}`, "want an object"},
		{"path a number", `{"pairs": [{"primary": 1}]}`, `cannot unmarshal a number into "primary"`},
		{"verify a bool", `{"pairs": [{"verify": true}]}`, `cannot unmarshal a bool into "verify"`},
		{"fallback a string", `{"pairs": [{"fallback": "yes"}]}`, "want true or false"},
		{"reserve a bool", `{"pairs": [{"reserve": true}]}`, "want a string"},
		{"reserve an object", `{"pairs": [{"reserve": {"n": 1}}]}`, `not {"n": 1}`},
		{"two objects", `{"pairs": []} {}`, "data after"},
		{"closing bracket after", `{"pairs": []} ]`, "data after"},
		{"trailing comma", `{"pairs": [],}`, "looking for the beginning of an object key"},
		{"missing colon", `{"pairs" []}`, "after an object key"},
		{"unclosed", `{"pairs": [`, "EOF"},
		{"bad literal", `{"pairs": nul}`, "beginning of a value"},
		{"control character", "{\"pairs\": [{\"name\": \"a\tb\"}]}", "in a string"},
		{"bad escape", `{"pairs": [{"name": "\x"}]}`, "string escape"},
		{"bad unicode escape", `{"pairs": [{"name": "\u12g4"}]}`, `\u escape`},
		{"leading zero", `{"pairs": [{"reserve": 01}]}`, "after an object value"},
		{"bare minus", `{"pairs": [{"reserve": -}]}`, "in a number"},
		{"bad fraction", `{"pairs": [{"reserve": 1.}]}`, "decimal point"},
		{"bad exponent", `{"pairs": [{"reserve": 1e}]}`, "exponent"},
		{"too deep", strings.Repeat("[", maxDepth+2), "nested too deep"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeConfig([]byte(tc.data))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("decodeConfig(%.60s) = %v, want an error saying %q", tc.data, err, tc.want)
			}
			if _, err := oracle([]byte(tc.data)); err == nil {
				t.Errorf("encoding/json accepts %.60s", tc.data)
			}
		})
	}
}

// FuzzDecodeConfig holds decodeConfig to encoding/json: both accept the
// same files and read the same pairs from them.
func FuzzDecodeConfig(f *testing.F) {
	for _, s := range []string{
		`{"pairs": [{"name": "app", "primary": "/a", "primary-tag": "/a.txt", "backup": "/b", "backup-tag": "/b.txt", "reserve": "60M"}]}`,
		`{"pairs": [{"verify": "full", "version-format": "semver", "reserve": 4096, "fallback": true}, null]}`,
		`{"PAIRS": [{"Name": "\u00e9\ud83d\ude00"}], "pairs": [{"reserve": null}]}`,
		`{"pairs": [{"name": "a", "verify": "x"}], "pairs": [{"backup": "/b"}, {}]}`,
		`null`, `[]`, `{"pairs": []} x`, `{"pairs": [{"reserve": -1.5e+3}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := decodeConfig(data)
		want, oerr := oracle(data)
		if (err == nil) != (oerr == nil) {
			t.Fatalf("decodeConfig(%q) = %v; encoding/json: %v", data, err, oerr)
		}
		if err != nil {
			return
		}
		if diff := cmp.Diff(want, got, pairsEmbedded); diff != "" {
			t.Errorf("decodeConfig(%q) (-json +decodeConfig):\n%s", data, diff)
		}
	})
}
