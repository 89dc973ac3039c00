package backup

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dualpart/backup/internal/fstest"
	"github.com/spf13/afero"
)

func TestInstall(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			e := newEnv(t, kind)
			put(t, e.primary, appV1(hasLinks(e)), "1\n")
			reconcile(t, e.pair())
			from := Side{Fs: e.primary.Fs, Dir: filepath.Join(filepath.Dir(e.primary.Tag), "download/apps")}
			if kind == "mem" {
				from = Side{Fs: afero.NewMemMapFs(), Dir: "/download/apps"}
			}
			put(t, from, appV2(hasLinks(e)), noTag)
			res, err := e.pair().Install(context.Background(), from.Fs, from.Dir, Decimal(2))
			if err != nil {
				t.Fatalf("Install(2) = %v", err)
			}
			if !res.PrimaryChanged || res.FilesWritten == 0 {
				t.Errorf("Install(2) = %+v, want the primary changed and files written", res)
			}
			wantAgree(t, e, appV2(hasLinks(e)), "2\n")

			// Not newer: refused, nothing written.
			pw := fstest.Wrap(e.primary.Fs)
			p := e.primary
			p.Fs = pw
			for _, v := range []Decimal{2, 1} {
				if _, err := New(p, e.backup).Install(context.Background(), from.Fs, from.Dir, v); !errors.Is(err, ErrNotNewer) {
					t.Errorf("Install(%d) = %v, want ErrNotNewer", v, err)
				}
			}
			if n, ops := pw.Mutations(); n != 0 {
				t.Errorf("refused Install made %d mutating calls %v", n, ops)
			}
			// A downgrade asked for: both sides end at the older version.
			old := Side{Fs: afero.NewMemMapFs(), Dir: "/old/apps"}
			if kind == "os" {
				old = Side{Fs: e.primary.Fs, Dir: filepath.Join(filepath.Dir(e.primary.Tag), "old/apps")}
			}
			put(t, old, appV1(hasLinks(e)), noTag)
			if _, err := e.pair(WithDowngrade(true)).Install(context.Background(), old.Fs, old.Dir, Decimal(1)); err != nil {
				t.Fatalf("Install(1, downgrade) = %v", err)
			}
			wantAgree(t, e, appV1(hasLinks(e)), "1\n")
		})
	}
}

func TestInstallFirstVersion(t *testing.T) {
	e := newEnv(t, "mem")
	from := Side{Fs: afero.NewMemMapFs(), Dir: "/dl"}
	put(t, from, appV1(false), noTag)
	if _, err := e.pair().Install(context.Background(), from.Fs, from.Dir, Decimal(1)); err != nil {
		t.Fatalf("Install(1) on empty sides = %v", err)
	}
	wantAgree(t, e, appV1(false), "1\n")
}

func TestInstallNoSpaceWritesNothing(t *testing.T) {
	e := newEnv(t, "mem")
	put(t, e.primary, appV1(false), "1\n")
	reconcile(t, e.pair())
	from := Side{Fs: afero.NewMemMapFs(), Dir: "/dl"}
	put(t, from, appV2(false), noTag)
	pw, bw := fstest.Wrap(e.primary.Fs), fstest.Wrap(e.backup.Fs)
	p, b := e.primary, e.backup
	p.Fs, b.Fs = pw, spaceFs{bw, 4096}
	if _, err := New(p, b).Install(context.Background(), from.Fs, from.Dir, Decimal(2)); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("Install() = %v, want ErrNoSpace", err)
	}
	for _, w := range []*fstest.Fs{pw, bw} {
		if n, ops := w.Mutations(); n != 0 {
			t.Errorf("Install() refused for space made %d mutating calls %v", n, ops)
		}
	}
	wantAgree(t, e, appV1(false), "1\n")
}

// TestInstallVersionNotWritable checks the refusal of a version that does
// not read back from its own tag: the error says what it reads back as,
// never ": <nil>".
func TestInstallVersionNotWritable(t *testing.T) {
	e := newEnv(t, "mem")
	put(t, e.primary, appV1(false), "1\n")
	stuck := VersionReaderFunc(func(tag []byte) (Version, error) {
		v, err := DecimalReader{}.ReadVersion(tag)
		if err == nil && v.Compare(Decimal(5)) == 0 {
			return Decimal(4), nil
		}
		return v, err
	})
	src := afero.NewMemMapFs()
	writeTree(t, Side{Fs: src, Dir: "/new"}, appV2(false))
	_, err := e.pair(WithVersionReader(stuck)).Install(context.Background(), src, "/new", Decimal(5))
	if err == nil || strings.Contains(err.Error(), "<nil>") || !strings.Contains(err.Error(), `reads back as "4"`) {
		t.Errorf("Install(5) = %v, want a refusal saying it reads back as 4", err)
	}
}
