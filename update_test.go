package backup

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"testing"

	"github.com/dualpart/backup/internal/fstest"
)

func TestUpdate(t *testing.T) {
	params := tree{"net": dir(0o700), "net/apn.conf": file(0o600, "apn=internet\n"), "serial": file(0o644, "A123\n"), "old": file(0o644, "x")}
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			e := newEnv(t, kind)
			put(t, e.primary, params, "5\n")
			reconcile(t, e.pair())
			res, err := e.pair().Update(context.Background(), func(tx *Tx) error {
				b, err := tx.ReadFile("net/apn.conf")
				if err != nil {
					return err
				}
				if err := tx.WriteFile("net/apn.conf", append(b, "user=x\n"...), 0o600); err != nil {
					return err
				}
				if err := tx.Rename("serial", "net/serial"); err != nil {
					return err
				}
				if err := tx.MkdirAll("cert/ca", 0o755); err != nil {
					return err
				}
				if err := tx.WriteFile("cert/ca/root.pem", []byte("PEM"), 0o644); err != nil {
					return err
				}
				return tx.Remove("old")
			})
			if err != nil {
				t.Fatalf("Update() = %v", err)
			}
			if res.FilesWritten == 0 {
				t.Errorf("Update() wrote nothing")
			}
			want := tree{
				"net": dir(0o700), "net/apn.conf": file(0o600, "apn=internet\nuser=x\n"), "net/serial": file(0o644, "A123\n"),
				"cert": dir(0o755), "cert/ca": dir(0o755), "cert/ca/root.pem": file(0o644, "PEM"),
			}
			wantAgree(t, e, want, "6\n")
		})
	}
}

func TestUpdateRefuses(t *testing.T) {
	e := newEnv(t, "mem")
	put(t, e.primary, tree{"a": file(0o644, "a")}, "1\n")
	reconcile(t, e.pair())
	pw, bw := fstest.Wrap(e.primary.Fs), fstest.Wrap(e.backup.Fs)
	p, b := e.primary, e.backup
	p.Fs, b.Fs = pw, bw
	pair := New(p, b)
	boom := errors.New("boom")
	tests := []struct {
		name string
		fn   func(tx *Tx) error
		want error
	}{
		{"fn error", func(tx *Tx) error {
			if err := tx.WriteFile("a", []byte("changed"), 0o644); err != nil {
				return err
			}
			return boom
		}, boom},
		{"dot dot", func(tx *Tx) error { return tx.WriteFile("../x", nil, 0o644) }, ErrBadPath},
		{"absolute", func(tx *Tx) error { return tx.WriteFile("/etc/passwd", nil, 0o644) }, ErrBadPath},
		{"rename out", func(tx *Tx) error { return tx.Rename("a", "../../a") }, ErrBadPath},
		{"read out", func(tx *Tx) error { _, err := tx.ReadFile("x/../../a"); return err }, ErrBadPath},
		{"missing dir", func(tx *Tx) error { return tx.WriteFile("no/such", nil, 0o644) }, fs.ErrNotExist},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pw.Reset()
			bw.Reset()
			_, err := pair.Update(context.Background(), tc.fn)
			if !errors.Is(err, tc.want) {
				t.Errorf("Update() = %v, want %v", err, tc.want)
			}
			for _, w := range []*fstest.Fs{pw, bw} {
				if n, ops := w.Mutations(); n != 0 {
					t.Errorf("failed Update() made %d mutating calls %v", n, ops)
				}
			}
		})
	}
	wantAgree(t, e, tree{"a": file(0o644, "a")}, "1\n")
	// A format without Next needs SetVersion.
	put(t, e.primary, tree{"a": file(0o644, "a")}, "1.0.0\n")
	put(t, e.backup, tree{"a": file(0o644, "a")}, "1.0.0\n")
	sv := e.pair(WithVersionReader(SemverReader{}))
	if _, err := sv.Update(context.Background(), func(tx *Tx) error { return tx.WriteFile("b", []byte("b"), 0o644) }); err == nil || !strings.Contains(err.Error(), "SetVersion") {
		t.Errorf("semver Update() without SetVersion = %v, want an error naming SetVersion", err)
	}
	_, err := sv.Update(context.Background(), func(tx *Tx) error {
		v, _ := SemverReader{}.ReadVersion([]byte("1.1.0"))
		tx.SetVersion(v)
		return tx.WriteFile("b", []byte("b"), 0o644)
	})
	if err != nil {
		t.Fatalf("semver Update() = %v", err)
	}
	wantAgree(t, e, tree{"a": file(0o644, "a"), "b": file(0o644, "b")}, "1.1.0\n", WithVersionReader(SemverReader{}))
}
