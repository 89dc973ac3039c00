package backup

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"aead.dev/minisign"
	"github.com/dualpart/backup/internal/manifest"
	"github.com/dualpart/backup/internal/signature"
	"github.com/google/go-cmp/cmp"
	"github.com/spf13/afero"
)

// signer is a minisign key pair made for a test.
type signer struct {
	pub, secret []byte
}

func newSigner(t testing.TB) signer {
	t.Helper()
	pub, priv, err := minisign.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	ptext, _ := pub.MarshalText()
	stext, _ := priv.MarshalText()
	return signer{pub: ptext, secret: stext}
}

func (s signer) keyring(t testing.TB) *Keyring {
	t.Helper()
	k, err := ParseKeyring(s.pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// publish writes tr on side d as version tag, with a manifest named name
// signed by s (the build pipeline's work): the genuine release.
func (s signer) publish(t *testing.T, d Side, tr tree, tag, name string) {
	t.Helper()
	put(t, d, tr, tag+"\n")
	s.signSide(t, d, tag, name)
}

// signSide writes d's manifest for version and name, as it holds now, and
// signs it.
func (s signer) signSide(t *testing.T, d Side, version, name string) {
	t.Helper()
	entries, err := manifest.Scan(context.Background(), d.Fs, d.Dir, true)
	if err != nil {
		t.Fatal(err)
	}
	m := &manifest.Manifest{Version: version, Name: name, Entries: entries}
	writeFile(t, d.Fs, d.manifestPath(), string(m.Marshal()), 0o644)
	s.signFile(t, d.Fs, d.manifestPath())
}

func (s signer) signFile(t *testing.T, fsys afero.Fs, name string) {
	t.Helper()
	data, err := afero.ReadFile(fsys, name)
	if err != nil {
		t.Fatal(err)
	}
	sig, _, err := signature.Sign(s.secret, bytes.NewReader(data), "test")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, fsys, name+SignatureSuffix, string(sig), 0o644)
}

// snapshot is every byte of a side: payload listing, tag, manifest and
// signature.
func snapshot(t *testing.T, s Side) map[string]string {
	t.Helper()
	out := readTree(t, s)
	if out == nil {
		out = map[string]string{}
	}
	for _, name := range []string{s.Tag, s.manifestPath(), s.sigPath()} {
		data, err := afero.ReadFile(s.Fs, name)
		if err != nil {
			out["@"+name] = "missing"
			continue
		}
		out["@"+name] = string(data)
	}
	return out
}

// TestSignedReconcile: a signed pair that agrees is left alone and both
// sides are trusted; a trusted side is copied with its signature, so the
// copy is trusted in turn.
func TestSignedReconcile(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			e := newEnv(t, kind)
			s := newSigner(t)
			s.publish(t, e.primary, appV1(hasLinks(e)), "1", "app")
			p := e.pair(WithKeyring(s.keyring(t)), WithVerify(VerifyFull))
			res := reconcile(t, p)
			if res.Primary.State != StateOK || res.Backup.State != StateMissing || res.Action != ActionPrimaryToBackup {
				t.Fatalf("first reconcile = %+v; want ok primary copied over the missing backup", res)
			}
			if d := cmp.Diff(snapshot(t, e.primary)["@"+e.primary.sigPath()], snapshot(t, e.backup)["@"+e.backup.sigPath()]); d != "" {
				t.Errorf("the signature was not copied verbatim (-primary +backup):\n%s", d)
			}
			res = reconcile(t, p)
			if res.Primary.State != StateOK || res.Backup.State != StateOK || res.Action != ActionNone {
				t.Errorf("second reconcile = %+v; want both ok and nothing done", res)
			}
		})
	}
}

// TestUsrDataAttacker plays an attacker who can write usr_data (the
// backup) only. Each attempt must end with system (the primary) byte for
// byte as before and the backup restored from it.
func TestUsrDataAttacker(t *testing.T) {
	type attack struct {
		name string
		do   func(t *testing.T, e *env, genuine, mallory signer)
		want string // in the backup's reason
	}
	evil := appV2(false)
	evil["bin/app"] = file(0o755, "#!/bin/sh\nrm -rf /\n")
	attacks := []attack{
		{"unsigned higher version", func(t *testing.T, e *env, _, _ signer) {
			removeSide(t, e.backup)
			if err := e.backup.Fs.Remove(e.backup.sigPath()); err != nil {
				t.Fatal(err)
			}
			put(t, e.backup, evil, "99\n")
		}, "unsigned"},
		{"unsigned higher version beside the old signed manifest", func(t *testing.T, e *env, _, _ signer) {
			put(t, e.backup, evil, "99\n")
		}, "is for version"},
		{"higher version signed by a key not in the keyring", func(t *testing.T, e *env, _, mallory signer) {
			mallory.publish(t, e.backup, evil, "99", "app")
		}, "not in the keyring"},
		{"genuine signed manifest of another pair", func(t *testing.T, e *env, genuine, _ signer) {
			genuine.publish(t, e.backup, evil, "99", "params")
		}, `signed for pair "params"`},
		{"genuine signature over a manifest whose tag says a higher version", func(t *testing.T, e *env, _, _ signer) {
			writeFile(t, e.backup.Fs, e.backup.Tag, "99\n", 0o644)
		}, "is for version"},
		{"manifest changed after signing", func(t *testing.T, e *env, genuine, _ signer) {
			put(t, e.backup, evil, "99\n")
			genuine.signSide(t, e.backup, "99", "app")
			entries, _ := manifest.Scan(context.Background(), e.backup.Fs, e.backup.Dir, true)
			entries = append(entries, manifest.Entry{Path: "zzz", Type: manifest.Dir, Mode: 0o755})
			mm := &manifest.Manifest{Version: "99", Name: "app", Entries: entries}
			writeFile(t, e.backup.Fs, e.backup.manifestPath(), string(mm.Marshal()), 0o644)
		}, "bad signature"},
		{"truncated signature", func(t *testing.T, e *env, _, _ signer) {
			sig, _ := afero.ReadFile(e.backup.Fs, e.backup.sigPath())
			writeFile(t, e.backup.Fs, e.backup.sigPath(), string(sig[:len(sig)/2]), 0o644)
			writeFile(t, e.backup.Fs, e.backup.Tag, "1\n", 0o644)
		}, "does not parse"},
		{"garbage signature", func(t *testing.T, e *env, _, _ signer) {
			writeFile(t, e.backup.Fs, e.backup.sigPath(), "untrusted comment: x\nAAAA\ntrusted comment: y\nAAAA\n", 0o644)
		}, "does not parse"},
		{"huge signature", func(t *testing.T, e *env, _, _ signer) {
			writeFile(t, e.backup.Fs, e.backup.sigPath(), strings.Repeat("A", 1<<20), 0o644)
		}, "too large"},
	}
	for _, kind := range kinds {
		for _, a := range attacks {
			t.Run(kind+"/"+a.name, func(t *testing.T) {
				e := newEnv(t, kind)
				genuine, mallory := newSigner(t), newSigner(t)
				genuine.publish(t, e.primary, appV1(false), "1", "app")
				p := e.pair(WithKeyring(genuine.keyring(t)))
				reconcile(t, p)
				system := snapshot(t, e.primary)
				restored := snapshot(t, e.backup)

				a.do(t, e, genuine, mallory)
				st, err := p.Status(context.Background())
				if err != nil {
					t.Fatalf("Status = %v", err)
				}
				if st.Backup.State != StateUntrusted || st.Backup.Err == nil || !strings.Contains(st.Backup.Err.Error(), a.want) {
					t.Errorf("backup = %s (%v); want untrusted, saying %q", st.Backup.State, st.Backup.Err, a.want)
				}
				res := reconcile(t, p)
				if res.Action != ActionPrimaryToBackup {
					t.Errorf("action = %v, want primary-to-backup", res.Action)
				}
				if d := cmp.Diff(system, snapshot(t, e.primary)); d != "" {
					t.Errorf("system changed (-before +after):\n%s", d)
				}
				if d := cmp.Diff(restored, snapshot(t, e.backup)); d != "" {
					t.Errorf("backup not restored from system (-want +got):\n%s", d)
				}
			})
		}
	}
}

// TestSameSizeSwapUnderGenuineSignature: a genuine signed manifest of a
// newer release, beside a payload with one file changed at the same size.
// At quick the stat check passes, so the side is a copy source, and the
// full hash before the first write refuses it; at full it is damaged at
// once. Either way system is unchanged and the backup restored from it.
func TestSameSizeSwapUnderGenuineSignature(t *testing.T) {
	for _, level := range []VerifyLevel{VerifyQuick, VerifyFull} {
		for _, kind := range kinds {
			t.Run(level.String()+"/"+kind, func(t *testing.T) {
				e := newEnv(t, kind)
				genuine := newSigner(t)
				genuine.publish(t, e.primary, appV1(false), "1", "app")
				p := e.pair(WithKeyring(genuine.keyring(t)), WithVerify(level))
				reconcile(t, p)
				system, restored := snapshot(t, e.primary), snapshot(t, e.backup)

				release := appV2(false)
				genuine.publish(t, e.backup, release, "2", "app") // the genuine v2, as published
				name := e.backup.Dir + "/bin/app"
				good, _ := afero.ReadFile(e.backup.Fs, name)
				bad := bytes.Replace(good, []byte("echo v2"), []byte("evil!!!"), 1)
				if len(bad) != len(good) || bytes.Equal(bad, good) {
					t.Fatal("the swapped file must differ at the same size")
				}
				writeFile(t, e.backup.Fs, name, string(bad), 0o755)

				res, err := p.Reconcile(context.Background())
				if err != nil {
					t.Fatalf("Reconcile = %v (%+v)", err, res)
				}
				if res.Action != ActionPrimaryToBackup {
					t.Errorf("action = %v, want primary-to-backup", res.Action)
				}
				if d := cmp.Diff(system, snapshot(t, e.primary)); d != "" {
					t.Errorf("system changed (-before +after):\n%s", d)
				}
				if d := cmp.Diff(restored, snapshot(t, e.backup)); d != "" {
					t.Errorf("backup not restored (-want +got):\n%s", d)
				}
			})
		}
	}
}

// TestBothUntrusted: nothing is written and ErrUntrusted is returned.
func TestBothUntrusted(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			e := newEnv(t, kind)
			genuine, mallory := newSigner(t), newSigner(t)
			mallory.publish(t, e.primary, appV1(false), "1", "app")
			put(t, e.backup, appV2(false), "2\n")
			before := [2]map[string]string{snapshot(t, e.primary), snapshot(t, e.backup)}
			res, err := e.pair(WithKeyring(genuine.keyring(t))).Reconcile(context.Background())
			if !errors.Is(err, ErrUntrusted) {
				t.Errorf("Reconcile = %v, want ErrUntrusted", err)
			}
			if res.Primary.State != StateUntrusted || res.Backup.State != StateUntrusted {
				t.Errorf("states = %s, %s; want untrusted, untrusted", res.Primary.State, res.Backup.State)
			}
			after := [2]map[string]string{snapshot(t, e.primary), snapshot(t, e.backup)}
			if d := cmp.Diff(before, after); d != "" {
				t.Errorf("something was written:\n%s", d)
			}
		})
	}
}

// TestPairName: a manifest signed for "params" is trusted by the pair
// named params only, and a bad name is an option error.
func TestPairName(t *testing.T) {
	e := newEnv(t, "mem")
	s := newSigner(t)
	s.publish(t, e.primary, appV1(false), "1", "params")
	if _, err := e.pair(WithKeyring(s.keyring(t))).Reconcile(context.Background()); !errors.Is(err, ErrUntrusted) {
		t.Errorf("pair app: Reconcile = %v, want ErrUntrusted", err)
	}
	res := reconcile(t, e.pair(WithKeyring(s.keyring(t)), WithName("params")))
	if res.Primary.State != StateOK || res.Action != ActionPrimaryToBackup {
		t.Errorf("pair params: %+v", res)
	}
	if _, err := e.pair(WithName("../x")).Reconcile(context.Background()); err == nil || !strings.Contains(err.Error(), "name") {
		t.Errorf("WithName(\"../x\"): Reconcile = %v, want a name error", err)
	}
}

// TestSignedInstall: InstallManifest installs a signed release on both
// sides, trusted; a payload that does not match its manifest, an unsigned
// manifest, Install without a manifest and Update are refused with nothing
// written.
func TestSignedInstall(t *testing.T) {
	ctx := context.Background()
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			e := newEnv(t, kind)
			s := newSigner(t)
			s.publish(t, e.primary, appV1(false), "1", "app")
			p := e.pair(WithKeyring(s.keyring(t)))
			reconcile(t, p)
			stage := Side{Fs: afero.NewMemMapFs(), Dir: "/stage/apps", Tag: "/stage/tag", Manifest: "/stage/app.manifest"}
			put(t, stage, appV2(false), noTag)
			s.signSide(t, stage, "2", "app")
			before := [2]map[string]string{snapshot(t, e.primary), snapshot(t, e.backup)}
			unchanged := func(what string) {
				t.Helper()
				if d := cmp.Diff(before, [2]map[string]string{snapshot(t, e.primary), snapshot(t, e.backup)}); d != "" {
					t.Errorf("%s wrote something:\n%s", what, d)
				}
			}

			if _, err := p.Install(ctx, stage.Fs, stage.Dir, Decimal(2)); !errors.Is(err, ErrUntrusted) {
				t.Errorf("Install = %v, want ErrUntrusted", err)
			}
			unchanged("Install")
			if _, err := p.Update(ctx, func(tx *Tx) error { return tx.WriteFile("x", []byte("x"), 0o644) }); !errors.Is(err, ErrUntrusted) {
				t.Errorf("Update = %v, want ErrUntrusted", err)
			}
			unchanged("Update")

			writeFile(t, stage.Fs, stage.Dir+"/README", "app twO\n", 0o644) // same size, other content
			if _, err := p.InstallManifest(ctx, stage.Fs, stage.Dir, stage.Manifest); err == nil || !errors.Is(err, manifest.ErrMismatch) {
				t.Errorf("InstallManifest of a payload that does not match = %v, want a mismatch", err)
			}
			unchanged("InstallManifest of a mismatching payload")
			writeFile(t, stage.Fs, stage.Dir+"/README", "app one\n", 0o644)

			other := newSigner(t)
			other.signFile(t, stage.Fs, stage.Manifest)
			if _, err := p.InstallManifest(ctx, stage.Fs, stage.Dir, stage.Manifest); !errors.Is(err, ErrUntrusted) {
				t.Errorf("InstallManifest signed by another key = %v, want ErrUntrusted", err)
			}
			unchanged("InstallManifest signed by another key")

			s.signFile(t, stage.Fs, stage.Manifest)
			res, err := p.InstallManifest(ctx, stage.Fs, stage.Dir, stage.Manifest)
			if err != nil {
				t.Fatalf("InstallManifest = %v", err)
			}
			if res.FilesWritten == 0 {
				t.Errorf("InstallManifest wrote nothing: %+v", res)
			}
			st, err := p.Status(ctx)
			if err != nil || st.Primary.State != StateOK || st.Backup.State != StateOK || st.Action != ActionNone ||
				st.Primary.Version.String() != "2" {
				t.Errorf("after InstallManifest: %+v, %v; want both ok at 2", st, err)
			}
			want, _ := afero.ReadFile(stage.Fs, stage.Manifest+SignatureSuffix)
			for _, side := range []Side{e.primary, e.backup} {
				if got, _ := afero.ReadFile(side.Fs, side.sigPath()); !bytes.Equal(got, want) {
					t.Errorf("%s: signature not installed verbatim", side.Dir)
				}
			}
		})
	}
}

// TestLegacySignature: a manifest signed in minisign's legacy mode (the
// whole message, not its hash) verifies too.
func TestLegacySignature(t *testing.T) {
	e := newEnv(t, "mem")
	pub, priv, err := minisign.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	put(t, e.primary, appV1(false), "1\n")
	entries, _ := manifest.Scan(context.Background(), e.primary.Fs, e.primary.Dir, true)
	m := (&manifest.Manifest{Version: "1", Name: "app", Entries: entries}).Marshal()
	writeFile(t, e.primary.Fs, e.primary.manifestPath(), string(m), 0o644)
	writeFile(t, e.primary.Fs, e.primary.sigPath(), string(minisign.Sign(priv, m)), 0o644)
	ptext, _ := pub.MarshalText()
	k, err := ParseKeyring(ptext)
	if err != nil {
		t.Fatal(err)
	}
	res := reconcile(t, e.pair(WithKeyring(k)))
	if res.Primary.State != StateOK || res.Action != ActionPrimaryToBackup {
		t.Errorf("legacy-signed primary: %+v", res)
	}
}

func TestReadKeyring(t *testing.T) {
	fsys := afero.NewMemMapFs()
	a, b := newSigner(t), newSigner(t)
	writeFile(t, fsys, "/etc/keys/a.pub", string(a.pub), 0o644)
	writeFile(t, fsys, "/etc/keys/b.pub", string(b.pub), 0o644)
	writeFile(t, fsys, "/etc/keys/README", "not a key", 0o644)
	k, err := ReadKeyring(fsys, "/etc/keys")
	if err != nil || len(k.IDs()) != 2 {
		t.Fatalf("ReadKeyring(dir) = %v, %v; want two keys", k, err)
	}
	if k, err := ReadKeyring(fsys, "/etc/keys/a.pub"); err != nil || len(k.IDs()) != 1 {
		t.Errorf("ReadKeyring(file) = %v, %v; want one key", k, err)
	}
	for _, bad := range []string{"/etc/keys/README", "/nowhere", "/etc"} {
		if _, err := ReadKeyring(fsys, bad); err == nil {
			t.Errorf("ReadKeyring(%q) = nil error", bad)
		}
	}
	if _, err := ReadKeyring(fsys); err == nil {
		t.Error("ReadKeyring() of nothing = nil error")
	}
}
