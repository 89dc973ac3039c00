package manifest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io/fs"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRoundTrip(t *testing.T) {
	m := sample()
	data := m.Marshal()
	got, err := Parse(data)
	if err != nil {
		t.Fatalf("Parse(Marshal()) = %v", err)
	}
	if diff := cmp.Diff(m, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	if again := got.Marshal(); !bytes.Equal(data, again) {
		t.Errorf("Marshal(Parse(b)) = %q, want b = %q", again, data)
	}
	empty := &Manifest{Version: ""}
	if got, err := Parse(empty.Marshal()); err != nil || got.Version != "" || len(got.Entries) != 0 {
		t.Errorf("Parse(Marshal(empty)) = %+v, %v; want no entries", got, err)
	}
}

// TestFormat pins version 2's bytes: a manifest on flash outlives the
// code that wrote it.
func TestFormat(t *testing.T) {
	m := &Manifest{Version: "4", Entries: []Entry{
		{Path: "bin", Type: Dir, Mode: 0o755, Owned: true, ModTime: 1712345678000000000},
		{Path: "bin/app", Type: File, Mode: 0o755 | fs.ModeSetuid, Size: 3, SHA256: sha256.Sum256([]byte("abc")),
			Owned: true, UID: 1000, GID: 1001, ModTime: 1712345678123456789},
		{Path: "bin/ping", Type: File, Mode: 0o755, Caps: "\x01\x02", ModTime: 7},
		{Path: "lib", Type: Symlink, Target: "bin", Owned: true, ModTime: 1},
	}}
	want := reseal(`dualpart-manifest 2
version "4"
entries 4
d 0755 0:0 1712345678000000000 "bin"
f 4755 1000:1001 1712345678123456789 3 ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad - "bin/app"
f 0755 - 7 0 0000000000000000000000000000000000000000000000000000000000000000 0102 "bin/ping"
l 0:0 1 "lib" "bin"
`)
	if got := m.Marshal(); !bytes.Equal(got, want) {
		t.Errorf("Marshal() =\n%s\nwant\n%s", got, want)
	}
}

// TestWriteTo checks that WriteTo writes what Marshal returns, leaving
// out what a manifest cannot hold, and passes on the writer's error.
func TestWriteTo(t *testing.T) {
	m := sample()
	withSpecial := &Manifest{Version: m.Version, Entries: append([]Entry{{Path: "0", Type: Special}}, m.Entries...)}
	var b bytes.Buffer
	n, err := withSpecial.WriteTo(&b)
	if err != nil || n != int64(b.Len()) || !bytes.Equal(b.Bytes(), m.Marshal()) {
		t.Errorf("WriteTo() = %d, %v, %q; want %q", n, err, b.Bytes(), m.Marshal())
	}
	full := errors.New("no space left on device")
	if _, err := m.WriteTo(&failingWriter{room: 100, err: full}); !errors.Is(err, full) {
		t.Errorf("WriteTo(a writer that fails) = %v, want its error", err)
	}
}

type failingWriter struct {
	room int
	err  error
}

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(p) > w.room {
		n := w.room
		w.room = 0
		return n, w.err
	}
	w.room -= len(p)
	return len(p), nil
}
