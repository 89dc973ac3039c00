package backup

import (
	"context"
	"errors"
	"testing"

	"github.com/dualpart/backup/internal/fstest"
	"github.com/google/go-cmp/cmp"
)

// TestAgreementWritesNothing pins invariant 6: a reconcile of two sides in
// agreement makes no mutating call at all, at every verify level.
func TestAgreementWritesNothing(t *testing.T) {
	for _, kind := range kinds {
		for _, level := range []VerifyLevel{VerifyNone, VerifyQuick, VerifyFull} {
			t.Run(kind+"/"+level.String(), func(t *testing.T) {
				e := newEnv(t, kind)
				put(t, e.primary, appV1(hasLinks(e)), "1\n")
				reconcile(t, e.pair())
				pw, bw := fstest.Wrap(e.primary.Fs), fstest.Wrap(e.backup.Fs)
				p, b := e.primary, e.backup
				p.Fs, b.Fs = pw, bw
				res, err := New(p, b, WithVerify(level)).Reconcile(context.Background())
				if err != nil || res.Action != ActionNone {
					t.Fatalf("Reconcile() = %v, %v; want none, nil", res.Action, err)
				}
				for _, w := range []*fstest.Fs{pw, bw} {
					if n, ops := w.Mutations(); n != 0 {
						t.Errorf("second Reconcile() made %d mutating calls %v, want 0", n, ops)
					}
				}
			})
		}
	}
}

// TestCountingFsCounts proves the counter used above can fail: the first
// reconcile, which copies, is seen writing.
func TestCountingFsCounts(t *testing.T) {
	e := newEnv(t, "mem")
	put(t, e.primary, appV1(false), "1\n")
	bw := fstest.Wrap(e.backup.Fs)
	b := e.backup
	b.Fs = bw
	if _, err := New(e.primary, b).Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := bw.Counts()
	for _, op := range []fstest.Op{fstest.OpOpenW, fstest.OpWrite, fstest.OpRename, fstest.OpSync, fstest.OpChmod, fstest.OpMkdir} {
		if c[op] == 0 {
			t.Errorf("copy made no %s call; counts %v", op, c)
		}
	}
}

// TestDiverged: same version, both intact, different content: reported,
// nothing written.
func TestDiverged(t *testing.T) {
	e := newEnv(t, "mem")
	put(t, e.primary, appV1(false), "1\n")
	reconcile(t, e.pair())
	// Both sides rewritten by the customer's tooling at one version.
	put(t, e.primary, appV2(false), "2\n")
	put(t, e.backup, appV1(false), "2\n")
	// Status finds it without manifests, by reading, and writes nothing.
	pw, bw := fstest.Wrap(e.primary.Fs), fstest.Wrap(e.backup.Fs)
	p, b := e.primary, e.backup
	p.Fs, b.Fs = pw, bw
	if _, err := New(p, b).Status(context.Background()); !errors.Is(err, ErrDiverged) {
		t.Errorf("Status() of two unverified sides = %v, want ErrDiverged", err)
	}
	for _, w := range []*fstest.Fs{pw, bw} {
		if n, ops := w.Mutations(); n != 0 {
			t.Errorf("Status() made %d mutating calls %v", n, ops)
		}
	}
	_, err := e.pair().Reconcile(context.Background())
	if !errors.Is(err, ErrDiverged) {
		t.Fatalf("Reconcile() = %v, want ErrDiverged", err)
	}
	if diff := cmp.Diff(appV1(false).Describe(), readTree(t, e.backup)); diff != "" {
		t.Errorf("backup changed (-want +got):\n%s", diff)
	}
	if _, err := e.pair().Status(context.Background()); !errors.Is(err, ErrDiverged) {
		t.Errorf("Status() = %v, want ErrDiverged once both have manifests", err)
	}
}

// TestUnverifiedAgreementAdoptsOnce: two customer-written sides at one
// version get their manifests once; the next reconcile writes nothing.
func TestUnverifiedAgreementAdoptsOnce(t *testing.T) {
	e := newEnv(t, "mem")
	put(t, e.primary, appV1(false), "1\n")
	put(t, e.backup, appV1(false), "1\n")
	res := reconcile(t, e.pair())
	if res.Primary.State != StateUnverified || res.Backup.State != StateUnverified || res.Action != ActionNone {
		t.Errorf("Reconcile() = %v/%v %v, want unverified/unverified none", res.Primary.State, res.Backup.State, res.Action)
	}
	pw := fstest.Wrap(e.primary.Fs)
	p := e.primary
	p.Fs = pw
	res = reconcile(t, New(p, e.backup))
	if res.Primary.State != StateOK || res.Backup.State != StateOK {
		t.Errorf("second Reconcile() = %v/%v, want ok/ok", res.Primary.State, res.Backup.State)
	}
	if n, ops := pw.Mutations(); n != 0 {
		t.Errorf("second Reconcile() made %d mutating calls %v, want 0", n, ops)
	}
}
