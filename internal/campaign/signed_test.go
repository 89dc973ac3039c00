package campaign_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"aead.dev/minisign"
	"github.com/dualpart/backup"
	"github.com/dualpart/backup/internal/crashfs"
	"github.com/dualpart/backup/internal/manifest"
	"github.com/dualpart/backup/internal/signature"
	"github.com/dualpart/backup/internal/treetest"
	"github.com/spf13/afero"
)

// signing is the build pipeline's key of the signed workloads, made once
// from a fixed seed so that every run explores the same bytes.
type signing struct {
	secret  []byte
	keyring *backup.Keyring
}

func newSigning(t *testing.T) signing {
	t.Helper()
	pub, priv, err := minisign.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{7}, 64)))
	must(t, err)
	ptext, _ := pub.MarshalText()
	stext, _ := priv.MarshalText()
	k, err := backup.ParseKeyring(ptext)
	must(t, err)
	return signing{secret: stext, keyring: k}
}

// sign writes the signed manifest of what s.Dir holds, as version and for
// pair "app", at s's manifest path (Tag + ".manifest" unless set).
func (g signing) sign(t *testing.T, fsys *crashfs.FS, s backup.Side, version string) {
	t.Helper()
	entries, err := manifest.Scan(context.Background(), fsys, s.Dir, true)
	must(t, err)
	data := (&manifest.Manifest{Version: version, Name: backup.DefaultName, Entries: entries}).Marshal()
	sig, _, err := signature.Sign(g.secret, bytes.NewReader(data), "campaign")
	must(t, err)
	mpath := s.Manifest
	if mpath == "" {
		mpath = s.Tag + ".manifest"
	}
	must(t, afero.WriteFile(fsys, mpath, data, 0o644))
	must(t, afero.WriteFile(fsys, mpath+backup.SignatureSuffix, sig, 0o644))
	syncAll(t, fsys)
}

// signedScenarios are the workloads of a pair with a keyring, which
// TestPowerLoss runs on every model: a signed install, and the boot after
// an attacker put an unsigned higher version on usr_data. Every pair the campaign makes for them, recoveries
// included, has the keyring; and at every crash state, a side that a
// keyring Status at full calls ok must hold a signed version whole.
func signedScenarios(t *testing.T) []scenario {
	g := newSigning(t)
	n := size().files
	v1, v2 := payload(n, 1), payload(n, 2)
	evil := payload(n, 1).With(treetest.Tree{"bin/app": treetest.File(0o755, "attacker's program")})
	trees := map[string]map[string]string{"1": v1.Describe(), "2": v2.Describe(), "9": evil.Describe()}
	signed := map[string]bool{"1": true, "2": true}
	opts := []backup.Option{backup.WithKeyring(g.keyring)}
	agreeAt1 := func(t *testing.T, fsys *crashfs.FS) {
		write(t, fsys, primary, v1, "1\n")
		g.sign(t, fsys, primary, "1")
		if _, err := newPair(fsys, opts...).Reconcile(context.Background()); err != nil {
			t.Fatalf("setup reconcile: %v", err)
		}
		syncAll(t, fsys)
	}
	stage := backup.Side{Dir: "/usr_data/download/apps", Tag: "/usr_data/download/tag", Manifest: "/usr_data/download/app.manifest"}
	extra := func(t *testing.T, fsys afero.Fs) []string {
		res, err := newPair(fsys, append(opts, backup.WithVerify(backup.VerifyFull))...).Status(context.Background())
		if err != nil && res.Primary.State == backup.StateMissing && res.Backup.State == backup.StateMissing {
			return nil // not read (both missing is ErrNoVersion)
		}
		var v []string
		for i, s := range []backup.Side{primary, backupS} {
			st := []backup.SideStatus{res.Primary, res.Backup}[i]
			if st.State != backup.StateOK {
				continue
			}
			got := snapshot(t, fsys, s)
			key := treeKey(scenario{trees: trees}, got.tag)
			if !signed[key] || !sameTree(trees[key], got.tree) {
				v = append(v, fmt.Sprintf("%s is trusted at version %q, but its payload is not that signed version", s.Dir, got.tag))
			}
		}
		return v
	}
	return []scenario{
		{name: "S1 signed install of version 2", setup: func(t *testing.T, fsys *crashfs.FS) {
			agreeAt1(t, fsys)
			write(t, fsys, stage, v2, "")
			g.sign(t, fsys, stage, "2")
		}, trees: trees, newest: []string{"1", "2"}, opts: opts, extra: extra, ciModels: true,
			run: func(ctx context.Context, p *backup.Pair) error {
				_, err := p.InstallManifest(ctx, p.Primary().Fs, stage.Dir, stage.Manifest)
				return err
			}},
		{name: "S2 unsigned version 9 planted on usr_data", setup: func(t *testing.T, fsys *crashfs.FS) {
			agreeAt1(t, fsys)
			write(t, fsys, backupS, evil, "9\n")
		}, trees: trees, newest: []string{"1"}, opts: opts, extra: extra, ciModels: true, run: reconcileRun},
	}
}
