package backup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dualpart/backup/internal/fstest"
	"github.com/dualpart/backup/internal/manifest"
	"github.com/google/go-cmp/cmp"
	"github.com/spf13/afero"
)

// TestBadTags: each garbage tag makes its side damaged with ErrBadTag, the
// other side is untouched, and nothing is written.
func TestBadTags(t *testing.T) {
	tests := []struct {
		name, tag string
		valid     bool
	}{
		{"empty", "", false},
		{"letters", "abc", false},
		{"negative", "-1", false},
		{"plus", "+1", false},
		{"overflow", "18446744073709551616", false},
		{"10 MiB of digits", strings.Repeat("9", 10<<20), false},
		{"two numbers", "1 2", false},
		{"spaces and CRLF", " 7 \r\n", true},
		{"max", "18446744073709551615\n", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, "mem")
			put(t, e.primary, appV1(false), "3\n")
			reconcile(t, e.pair())
			put(t, e.backup, appV2(false), tc.tag)
			backupBefore := readTree(t, e.backup)
			primaryBefore := readTree(t, e.primary)
			st, err := e.pair().Status(context.Background())
			if tc.valid {
				if st.Backup.State != StateUnverified || err != nil {
					t.Fatalf("Status() backup = %v (%v), err %v; want unverified", st.Backup.State, st.Backup.Err, err)
				}
				return
			}
			if st.Backup.State != StateDamaged || !errors.Is(st.Backup.Err, ErrBadTag) || st.Backup.Version != nil {
				t.Errorf("Status().Backup = %+v, want damaged with ErrBadTag and no version", st.Backup)
			}
			_, err = e.pair().Reconcile(context.Background())
			if !errors.Is(err, ErrNoIntactCopy) {
				t.Errorf("Reconcile() error = %v, want ErrNoIntactCopy (an unreadable version may be newer)", err)
			}
			if diff := cmp.Diff(backupBefore, readTree(t, e.backup)); diff != "" {
				t.Errorf("backup changed (-before +after):\n%s", diff)
			}
			if diff := cmp.Diff(primaryBefore, readTree(t, e.primary)); diff != "" {
				t.Errorf("primary changed (-before +after):\n%s", diff)
			}
			// With the fallback allowed, the intact primary is restored.
			if res := reconcile(t, e.pair(WithFallback(true))); res.Action != ActionPrimaryToBackup {
				t.Errorf("Reconcile(fallback).Action = %v, want primary-to-backup", res.Action)
			}
			wantAgree(t, e, appV1(false), "3\n")
		})
	}
}

// TestBadManifests: a garbled manifest, or one naming paths outside the
// payload, makes its side damaged; it is repaired from the intact side at
// the same version and nothing is written outside the payload.
func TestBadManifests(t *testing.T) {
	good := func(e *env) []byte {
		data, err := afero.ReadFile(e.backup.Fs, e.backup.manifestPath())
		if err != nil {
			panic(err)
		}
		return data
	}
	reseal := func(body string) []byte {
		s := sha256Hex([]byte(body))
		return []byte(body + "sum " + s + "\n")
	}
	tests := []struct {
		name string
		make func(e *env) []byte
	}{
		{"wrong checksum", func(e *env) []byte {
			d := good(e)
			d[30] ^= 1
			return d
		}},
		{"dot dot", func(e *env) []byte {
			return reseal("dualpart-manifest 1\nversion \"1\"\nf 0644 1 " + sum("x") + " \"../x\"\n")
		}},
		{"absolute", func(e *env) []byte {
			return reseal("dualpart-manifest 1\nversion \"1\"\nf 0644 1 " + sum("x") + " \"/etc/passwd\"\n")
		}},
		{"duplicate", func(e *env) []byte {
			l := "f 0644 1 " + sum("x") + " \"a\"\n"
			return reseal("dualpart-manifest 1\nversion \"1\"\n" + l + l)
		}},
		{"not clean", func(e *env) []byte {
			return reseal("dualpart-manifest 1\nversion \"1\"\nd 0755 \"a\"\nf 0644 1 " + sum("x") + " \"a//b\"\n")
		}},
		{"truncated", func(e *env) []byte { return good(e)[:40] }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, "mem")
			put(t, e.primary, appV1(false), "1\n")
			reconcile(t, e.pair())
			writeFile(t, e.backup.Fs, e.backup.manifestPath(), string(tc.make(e)), 0o644)
			primaryBefore := readTree(t, e.primary)
			st, _ := e.pair().Status(context.Background())
			if st.Backup.State != StateDamaged || !errors.Is(st.Backup.Err, ErrBadManifest) {
				t.Fatalf("Status().Backup = %v (%v), want damaged with ErrBadManifest", st.Backup.State, st.Backup.Err)
			}
			res := reconcile(t, e.pair())
			if res.Action != ActionPrimaryToBackup {
				t.Errorf("Reconcile().Action = %v, want primary-to-backup", res.Action)
			}
			if diff := cmp.Diff(primaryBefore, readTree(t, e.primary)); diff != "" {
				t.Errorf("primary changed (-before +after):\n%s", diff)
			}
			for _, n := range []string{"/usrdata/x", "/usrdata/appbackup/x", "/etc/passwd"} {
				if exists(e.backup.Fs, n) {
					t.Errorf("%q was written outside the payload", n)
				}
			}
			wantAgree(t, e, appV1(false), "1\n")
		})
	}
}

// TestUnverifiedTagWithoutPayload: a tag whose payload directory is gone is
// damaged, never copied over the other side as an empty payload.
func TestUnverifiedTagWithoutPayload(t *testing.T) {
	e := newEnv(t, "mem")
	put(t, e.primary, appV1(false), "1\n")
	reconcile(t, e.pair())
	if err := e.primary.Fs.RemoveAll(e.primary.Dir); err != nil {
		t.Fatal(err)
	}
	writeFile(t, e.primary.Fs, e.primary.Tag, "2\n", 0o644)
	_, err := e.pair().Reconcile(context.Background())
	if !errors.Is(err, ErrNoIntactCopy) {
		t.Fatalf("Reconcile() = %v, want ErrNoIntactCopy", err)
	}
	if diff := cmp.Diff(appV1(false).Describe(), readTree(t, e.backup)); diff != "" {
		t.Errorf("backup changed (-want +got):\n%s", diff)
	}
}

// TestSymlinkOnMemFs: a filesystem without symlinks cannot receive one; the
// copy fails clearly and the destination reads as missing.
func TestPayloadRootSymlink(t *testing.T) {
	e := newEnv(t, "os")
	outside := t.TempDir()
	put(t, e.primary, tree{"f": file(0o644, "f")}, "1\n")
	if err := e.backup.Fs.MkdirAll(filepath.Dir(e.backup.Dir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := e.backup.Fs.(afero.Linker).SymlinkIfPossible(outside, e.backup.Dir); err != nil {
		t.Fatal(err)
	}
	reconcile(t, e.pair())
	if ents, _ := afero.ReadDir(afero.NewOsFs(), outside); len(ents) != 0 {
		t.Errorf("wrote %d entries through the payload's symlink", len(ents))
	}
	wantAgree(t, e, tree{"f": file(0o644, "f")}, "1\n")
}

// BenchmarkVerify measures a quick and a full verify of a 1,000-file,
// 50 MiB payload on real files (Status of two sides in agreement verifies
// both, so the figure is for two payloads).
func BenchmarkVerify(b *testing.B) {
	root := b.TempDir()
	e := &env{kind: "os",
		primary: Side{Fs: afero.NewOsFs(), Dir: filepath.Join(root, "p/apps"), Tag: filepath.Join(root, "p/tag")},
		backup:  Side{Fs: afero.NewOsFs(), Dir: filepath.Join(root, "b/apps"), Tag: filepath.Join(root, "b/tag")},
	}
	makeBigTree(b, e.primary.Fs, e.primary.Dir, 1000, 50<<20)
	writeFile(b, e.primary.Fs, e.primary.Tag, "1\n", 0o644)
	if _, err := e.pair().Reconcile(context.Background()); err != nil {
		b.Fatal(err)
	}
	for _, level := range []VerifyLevel{VerifyNone, VerifyQuick, VerifyFull} {
		b.Run(level.String(), func(b *testing.B) {
			p := e.pair(WithVerify(level))
			b.SetBytes(2 * 50 << 20)
			for i := 0; i < b.N; i++ {
				res, err := p.Status(context.Background())
				if err != nil || res.Action != ActionNone {
					b.Fatalf("Status() = %v, %v", res.Action, err)
				}
			}
		})
	}
}

// TestGarbledTagBesideManifest: a tag that does not parse, beside a
// manifest that parses and that the payload matches, still tells the
// side's version. In agreement, only the tag is rewritten; on the newer
// side, the garbled tag no longer blocks the upgrade of the other side.
func TestGarbledTagBesideManifest(t *testing.T) {
	for _, garbage := range []string{"", "abc\n", "\x00\xff\x13"} {
		t.Run(fmt.Sprintf("agreement/%q", garbage), func(t *testing.T) {
			e := newEnv(t, "mem")
			put(t, e.primary, appV1(false), "3\n")
			reconcile(t, e.pair())
			writeFile(t, e.backup.Fs, e.backup.Tag, garbage, 0o644)
			w := fstest.Wrap(e.backup.Fs)
			var touched []string
			w.OnOp = func(op fstest.Op, name string) {
				if op != fstest.OpRead {
					touched = append(touched, name)
				}
			}
			b := e.backup
			b.Fs = w
			res, err := New(e.primary, b).Reconcile(context.Background())
			if err != nil || res.Action != ActionNone || len(res.Warnings) != 1 || res.PrimaryChanged {
				t.Fatalf("Reconcile() = %+v, %v; want no copy and one warning", res, err)
			}
			if res.Backup.State != StateDamaged || res.Backup.Version == nil || res.Backup.Version.String() != "3" {
				t.Errorf("Result.Backup = %+v, want damaged at version 3", res.Backup)
			}
			for _, name := range touched {
				if strings.HasPrefix(name, e.backup.Dir) {
					t.Errorf("Reconcile() wrote %q in the payload; only the tag should be", name)
				}
			}
			wantAgree(t, e, appV1(false), "3\n")
			if res := reconcile(t, e.pair()); res.Action != ActionNone || len(res.Warnings) != 0 {
				t.Errorf("second Reconcile() = %+v, want nothing to do", res)
			}
		})
	}
	t.Run("newer side", func(t *testing.T) {
		e := newEnv(t, "mem")
		put(t, e.primary, appV1(false), "3\n")
		reconcile(t, e.pair())
		put(t, e.primary, appV2(false), "4\n")
		seal(t, e.primary)
		writeFile(t, e.primary.Fs, e.primary.Tag, "4x\n", 0o644)
		res := reconcile(t, e.pair())
		if res.Action != ActionPrimaryToBackup || res.Primary.Version.String() != "4" {
			t.Errorf("Reconcile() = %+v, want the primary, at 4 by its manifest, copied", res)
		}
		wantAgree(t, e, appV2(false), "4\n")
	})
}

// TestReadOnlySourceWithoutManifest: a source that cannot be written and
// has no manifest (a rootfs mounted read-only, no factory manifest) is
// still copied: its manifest is computed from a full read, kept in memory,
// and written to the destination only.
func TestReadOnlySourceWithoutManifest(t *testing.T) {
	e := newEnv(t, "mem")
	put(t, e.primary, appV1(false), "1\n")
	p := e.primary
	p.Fs = afero.NewReadOnlyFs(e.primary.Fs)
	res, err := New(p, e.backup).Reconcile(context.Background())
	if err != nil || res.Action != ActionPrimaryToBackup {
		t.Fatalf("Reconcile() = %+v, %v; want the read-only primary copied", res, err)
	}
	if _, err := e.primary.Fs.Stat(e.primary.manifestPath()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a manifest appeared on the read-only primary: %v", err)
	}
	if diff := cmp.Diff(appV1(false).Describe(), readTree(t, e.backup)); diff != "" {
		t.Errorf("backup (-want +got):\n%s", diff)
	}
	st, err := New(p, e.backup, WithVerify(VerifyFull)).Status(context.Background())
	if err != nil || st.Backup.State != StateOK || st.Primary.State != StateUnverified {
		t.Errorf("Status() = %+v, %v; want the backup ok and the primary unverified", st, err)
	}
}

// TestReservedName: a user's file whose name starts with the library's
// temporary prefix is refused with an error naming it, never silently
// dropped from the copy.
func TestReservedName(t *testing.T) {
	e := newEnv(t, "mem")
	tr := appV1(false)
	tr["bin/.dualpart-tmp-mine"] = file(0o644, "mine\n")
	put(t, e.primary, tr, "1\n")
	_, err := e.pair().Reconcile(context.Background())
	if !errors.Is(err, manifest.ErrReserved) || !strings.Contains(err.Error(), ".dualpart-tmp-mine") {
		t.Errorf("Reconcile() = %v, want a refusal naming the file", err)
	}
	if _, err := e.backup.Fs.Stat(e.backup.Tag); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("backup tag written despite the refusal: %v", err)
	}
}

// TestInspectBothAtOnce: on the operating system's filesystem both sides
// are inspected at once. A caller's VersionReader that is not safe for
// concurrent use (this one counts its calls without a lock: under -race
// a concurrent call is reported) is still called one call at a time, and
// each side's status is what inspecting it alone finds.
func TestInspectBothAtOnce(t *testing.T) {
	e := newEnv(t, "os")
	put(t, e.primary, appV2(true), "5\n")
	reconcile(t, e.pair())
	put(t, e.backup, appV1(true), "4\n") // older, no manifest: unverified
	var calls int
	r := VersionReaderFunc(func(tag []byte) (Version, error) {
		calls++
		return DecimalReader{}.ReadVersion(tag)
	})
	p := e.pair(WithVersionReader(r))
	pf, bf, err := p.inspectBoth(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !pf.primary || bf.primary {
		t.Errorf("primary flags: primary side %v, backup side %v", pf.primary, bf.primary)
	}
	for _, c := range []struct {
		got  *found
		side Side
	}{{pf, e.primary}, {bf, e.backup}} {
		alone, err := p.inspect(context.Background(), c.side, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.got.status.State != alone.status.State || c.got.status.Version.Compare(alone.status.Version) != 0 {
			t.Errorf("%s: inspected with the other side %v %v, alone %v %v", c.side.Dir,
				c.got.status.State, c.got.status.Version, alone.status.State, alone.status.Version)
		}
	}
	if pf.status.State != StateOK || bf.status.State != StateUnverified {
		t.Errorf("states: primary %v, backup %v; want ok, unverified", pf.status.State, bf.status.State)
	}
	if calls < 3 {
		t.Errorf("the reader was called %d times, want at least 3 (two tags and a manifest)", calls)
	}
}

// TestIdenticalManifestParsedOnce: where the backup's manifest holds the
// primary's bytes, as after every copy, the backup takes the primary's
// manifest as parsed rather than parsing its own (a boot in agreement
// parses one manifest, not two). Where the bytes differ, or the shared
// bytes do not parse, each side's manifest is its own, with its own error.
func TestIdenticalManifestParsedOnce(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, kind)
			put(t, e.primary, appV1(hasLinks(e)), "1\n")
			reconcile(t, e.pair())
			for _, v := range []VerifyLevel{VerifyNone, VerifyQuick, VerifyFull} {
				pf, bf, err := e.pair(WithVerify(v)).inspectBoth(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if pf.status.State != StateOK || bf.status.State != StateOK {
					t.Fatalf("verify %v: states %v, %v; want ok, ok", v, pf.status.State, bf.status.State)
				}
				if pf.man == nil || pf.man != bf.man {
					t.Errorf("verify %v: the backup parsed a manifest of the same bytes again", v)
				}
			}
			good, err := afero.ReadFile(e.primary.Fs, e.primary.manifestPath())
			if err != nil {
				t.Fatal(err)
			}
			// One flipped bit on the backup: its own parse, which fails.
			bad := append([]byte(nil), good...)
			bad[30] ^= 1
			writeFile(t, e.backup.Fs, e.backup.manifestPath(), string(bad), 0o644)
			pf, bf, err := e.pair().inspectBoth(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if pf.status.State != StateOK || bf.status.State != StateDamaged || !errors.Is(bf.status.Err, ErrBadManifest) {
				t.Errorf("backup manifest flipped: states %v, %v (%v); want ok, damaged with ErrBadManifest", pf.status.State, bf.status.State, bf.status.Err)
			}
			// The same bad bytes on both: each side damaged, each error
			// naming its own manifest.
			writeFile(t, e.primary.Fs, e.primary.manifestPath(), string(bad), 0o644)
			pf, bf, err = e.pair().inspectBoth(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range []*found{pf, bf} {
				if f.status.State != StateDamaged || !errors.Is(f.status.Err, ErrBadManifest) || !strings.Contains(f.status.Err.Error(), f.side.manifestPath()) {
					t.Errorf("%s: both manifests flipped alike: %v (%v); want damaged with ErrBadManifest naming %q", f.side.Dir, f.status.State, f.status.Err, f.side.manifestPath())
				}
			}
		})
	}
}
