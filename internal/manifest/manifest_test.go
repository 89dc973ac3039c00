package manifest

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"io/fs"
	"strings"
	"testing"
)

// capsBlob returns a struct vfs_cap_data of revision 2 (linux/capability.h)
// granting permitted capability bit (13 is CAP_NET_RAW), effective if eff.
func capsBlob(bit uint, eff bool) string {
	b := make([]byte, 20)
	magic := uint32(0x02000000) // VFS_CAP_REVISION_2
	if eff {
		magic |= 1 // VFS_CAP_FLAGS_EFFECTIVE
	}
	binary.LittleEndian.PutUint32(b[0:], magic)
	binary.LittleEndian.PutUint32(b[4+8*(bit/32):], 1<<(bit%32))
	return string(b)
}

func sample() *Manifest {
	return &Manifest{Version: "3", Entries: []Entry{
		{Path: "a b", Type: Dir, Mode: 0o755, Owned: true, ModTime: 1712345678000000000},
		{Path: "a b/\"q\"\n", Type: File, Mode: 0o755 | fs.ModeSetuid, Size: 3, SHA256: sha256.Sum256([]byte("abc")),
			Owned: true, UID: 65534, GID: 65534, ModTime: 1712345678123456789},
		{Path: "a b/link", Type: Symlink, Target: "../x y", Owned: true, UID: 1000, GID: 100, ModTime: -1},
		{Path: "a b/ping", Type: File, Mode: 0o711, Size: 1 << 40, Caps: capsBlob(13, true), Owned: true, ModTime: 5},
		{Path: "z", Type: File, Mode: 0o600},
		{Path: "\u00e9\xff", Type: Dir, Mode: 0o777 | fs.ModeSticky | fs.ModeSetgid, Owned: true, UID: 1<<32 - 1, GID: 1<<32 - 1, ModTime: -1 << 63},
	}}
}

func reseal(body string) []byte {
	s := sha256.Sum256([]byte(body))
	return []byte(body + "sum " + hex.EncodeToString(s[:]) + "\n")
}

func TestSameContent(t *testing.T) {
	base := Entry{Path: "a", Type: File, Mode: 0o755, Size: 3, SHA256: sha256.Sum256([]byte("abc")),
		Owned: true, UID: 1, GID: 2, ModTime: 10, Caps: "c"}
	tests := []struct {
		name   string
		change func(*Entry)
		same   bool
	}{
		{"identical", func(*Entry) {}, true},
		{"mtime", func(e *Entry) { e.ModTime = 99 }, true},
		{"path", func(e *Entry) { e.Path = "b" }, true},
		{"owner unknown", func(e *Entry) { e.Owned, e.UID, e.GID = false, 0, 0 }, true},
		{"uid", func(e *Entry) { e.UID = 0 }, false},
		{"gid", func(e *Entry) { e.GID = 0 }, false},
		{"mode", func(e *Entry) { e.Mode |= fs.ModeSetuid }, false},
		{"size", func(e *Entry) { e.Size = 4 }, false},
		{"digest", func(e *Entry) { e.SHA256[0] ^= 1 }, false},
		{"caps", func(e *Entry) { e.Caps = "" }, false},
		{"type", func(e *Entry) { e.Type = Dir }, false},
		{"target", func(e *Entry) { e.Target = "x" }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			other := base
			tc.change(&other)
			if got := SameContent(base, other); got != tc.same {
				t.Errorf("SameContent(%+v, %+v) = %v, want %v", base, other, got, tc.same)
			}
			if got := SameContent(other, base); got != tc.same {
				t.Errorf("SameContent(%+v, %+v) = %v, want %v", other, base, got, tc.same)
			}
			if got, want := Equal(base, other), tc.same && base.Path == other.Path; got != want {
				t.Errorf("Equal(%+v, %+v) = %v, want %v", base, other, got, want)
			}
		})
	}
}

func TestValidateLongEntry(t *testing.T) {
	long := strings.Repeat("\xff", MaxLine/8)
	if err := Validate([]Entry{{Path: "a", Type: Symlink, Target: long}}); err != nil {
		t.Errorf("Validate(a %d-byte target) = %v, want nil", len(long), err)
	}
	m := &Manifest{Entries: []Entry{{Path: "a", Type: Symlink, Target: long + long}}}
	if err := Validate(m.Entries); err == nil || !strings.Contains(err.Error(), "too long") {
		t.Errorf("Validate(a %d-byte target) = %v, want too long", 2*len(long), err)
	}
	// What Validate lets through fits in a line.
	m.Entries[0].Target = long
	if _, err := Parse(m.Marshal()); err != nil {
		t.Errorf("Parse(Marshal(a %d-byte target)) = %v", len(long), err)
	}
}
