package backup

import (
	"io"
	"path/filepath"
	"testing"

	"github.com/spf13/afero"
)

// TestSymlinks (real files): links are copied as links; a destination link
// out of the payload where the source has a directory is replaced by a real
// directory, and nothing is written through it.
func TestSymlinks(t *testing.T) {
	e := newEnv(t, "os")
	outside := t.TempDir()
	put(t, e.primary, tree{
		"lib":        dir(0o755),
		"lib/a.so":   file(0o644, "a"),
		"rel":        link("lib/a.so"),
		"dangling":   link("../nowhere"),
		"abs":        link("/etc/hostname"),
		"bin":        dir(0o755),
		"bin/app":    file(0o755, "app"),
		"bin/lib.so": link("../lib/a.so"),
	}, "1\n")
	put(t, e.backup, tree{"lib": link(outside), "bin": dir(0o755), "bin/app": link("/bin/sh")}, noTag)
	res := reconcile(t, e.pair())
	if res.Action != ActionPrimaryToBackup {
		t.Fatalf("Reconcile().Action = %v", res.Action)
	}
	ents, err := afero.ReadDir(afero.NewOsFs(), outside)
	if err != nil || len(ents) != 0 {
		t.Errorf("outside directory holds %d entries (err %v), want 0", len(ents), err)
	}
	wantAgree(t, e, readTree(t, e.primary), "1\n")
	if st, _, err := e.backup.Fs.(afero.Lstater).LstatIfPossible(filepath.Join(e.backup.Dir, "lib")); err != nil || !st.IsDir() {
		t.Errorf("backup lib = %v, %v; want a real directory", st, err)
	}
}

// TestRunningBinary: a destination file held open keeps its old content
// through the handle while its path gets the new content.
func TestRunningBinary(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			e := newEnv(t, kind)
			put(t, e.primary, appV1(false), "1\n")
			reconcile(t, e.pair())
			name := filepath.Join(e.backup.Dir, "bin/app")
			f, err := e.backup.Fs.Open(name)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			put(t, e.primary, appV2(false), "2\n")
			reconcile(t, e.pair())
			old, err := io.ReadAll(f)
			if err != nil {
				t.Fatal(err)
			}
			if want := "#!/bin/sh\necho v1\n"; string(old) != want {
				t.Errorf("open handle reads %q, want the old %q", old, want)
			}
			wantAgree(t, e, appV2(false), "2\n")
		})
	}
}
