package cli

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// minisignTool returns the minisign tool, or skips: the signed-app tests
// run the real one (Debian package minisign; .ci/run installs it).
func minisignTool(t *testing.T) string {
	t.Helper()
	tool, err := exec.LookPath("minisign")
	if err != nil {
		t.Skip("the minisign tool is not installed (apt-get install minisign; .ci/run installs it)")
	}
	return tool
}

func runTool(t *testing.T, tool string, args ...string) string {
	t.Helper()
	out, err := exec.Command(tool, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(tool), strings.Join(args, " "), err, out)
	}
	return string(out)
}

// keyPair makes a minisign key pair in dir with the minisign tool, as a
// build pipeline does once, and returns the public and secret key files.
func keyPair(t *testing.T, tool, dir, name string) (pub, secret string) {
	t.Helper()
	pub, secret = filepath.Join(dir, name+".pub"), filepath.Join(dir, name+".key")
	runTool(t, tool, "-G", "-W", "-p", pub, "-s", secret)
	return pub, secret
}

// TestSignRoundTrip: what dualpart signs, minisign verifies, and what
// minisign signs, dualpart verifies.
func TestSignRoundTrip(t *testing.T) {
	tool := minisignTool(t)
	l := newLayout(t)
	keys := t.TempDir()
	pub, secret := keyPair(t, tool, keys, "build")
	put(t, l.primary, l.primaryTag, appV1, "3\n")
	mpath := l.primaryTag + ".manifest"

	r := dualpart(t, "manifest", "write", "--dir", l.primary, "--tag", l.primaryTag, "--name", "app", "--sign", secret)
	if r.code != 0 || !strings.Contains(r.stderr, `signed for pair "app"`) {
		t.Fatalf("manifest write --sign = %d\n%s", r.code, r.stderr)
	}
	runTool(t, tool, "-V", "-H", "-p", pub, "-m", mpath)
	r = dualpart(t, "manifest", "check", "--dir", l.primary, "--tag", l.primaryTag, "--keyring", pub)
	if r.code != 0 || !strings.Contains(r.stderr, "signed for pair") {
		t.Errorf("manifest check --keyring = %d\n%s", r.code, r.stderr)
	}

	// minisign signs the manifest itself (its prehashed default, then its
	// legacy mode): dualpart verifies both.
	for _, extra := range [][]string{nil, {"-l"}} {
		runTool(t, tool, append([]string{"-S", "-s", secret, "-m", mpath}, extra...)...)
		r = dualpart(t, "manifest", "check", "--dir", l.primary, "--tag", l.primaryTag, "--keyring", keys)
		if r.code != 0 {
			t.Errorf("manifest check of minisign -S %v = %d\n%s", extra, r.code, r.stderr)
		}
	}
	// Another pair's name, another key: refused.
	r = dualpart(t, "manifest", "check", "--dir", l.primary, "--tag", l.primaryTag, "--keyring", pub, "--name", "params")
	if r.code != 1 || !strings.Contains(r.stderr, `signed for pair "app", not "params"`) {
		t.Errorf("manifest check --name params = %d\n%s", r.code, r.stderr)
	}
	other, _ := keyPair(t, tool, t.TempDir(), "other")
	r = dualpart(t, "manifest", "check", "--dir", l.primary, "--tag", l.primaryTag, "--keyring", other)
	if r.code != 1 || !strings.Contains(r.stderr, "not in the keyring") {
		t.Errorf("manifest check with another key = %d\n%s", r.code, r.stderr)
	}
}

// TestSignedBoot: the boot command with a keyring. An attacker's unsigned
// higher version on usr_data is untrusted and replaced from system, which
// is unchanged; the JSON names the state and the reason. Both sides
// untrusted: exit 1 and nothing written. Install needs a signed manifest.
func TestSignedBoot(t *testing.T) {
	tool := minisignTool(t)
	l := newLayout(t)
	keys := t.TempDir()
	pub, secret := keyPair(t, tool, keys, "build")
	put(t, l.primary, l.primaryTag, appV1, "1\n")
	if r := dualpart(t, "manifest", "write", "--dir", l.primary, "--tag", l.primaryTag, "--sign", secret); r.code != 0 {
		t.Fatalf("manifest write = %d\n%s", r.code, r.stderr)
	}
	flags := l.flags("--keyring", pub)
	if r := dualpart(t, append([]string{"reconcile"}, flags...)...); r.code != 0 {
		t.Fatalf("first reconcile = %d\n%s", r.code, r.stderr)
	}
	good := readSides(t, l)

	put(t, l.backup, l.backupTag, appV2, "99\n") // echo 99 > app_ver.txt
	r := dualpart(t, append([]string{"status", "--json"}, flags...)...)
	st := pairs(t, r.stdout)
	if r.code != 0 || len(st) != 1 || st[0].Backup.State != "untrusted" || !strings.Contains(st[0].Backup.Reason, "version") {
		t.Errorf("status = %d %+v\n%s", r.code, st, r.stderr)
	}
	r = dualpart(t, append([]string{"reconcile"}, flags...)...)
	if r.code != 0 || !strings.Contains(r.stderr+r.stdout, "untrusted") {
		t.Errorf("reconcile = %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if d := cmp.Diff(good, readSides(t, l)); d != "" {
		t.Errorf("after the attack (-want +got):\n%s", d)
	}

	// The plain "echo 5 > app_ver.txt" habit on both sides: refused.
	put(t, l.primary, l.primaryTag, appV2, "5\n")
	put(t, l.backup, l.backupTag, appV2, "5\n")
	before := readSides(t, l)
	r = dualpart(t, append([]string{"reconcile", "--json"}, flags...)...)
	if out := pairs(t, r.stdout); r.code != 1 || len(out) != 1 || !strings.Contains(out[0].Error, "untrusted") {
		t.Errorf("both untrusted: reconcile = %d %+v\n%s", r.code, out, r.stderr)
	}
	if d := cmp.Diff(before, readSides(t, l)); d != "" {
		t.Errorf("both untrusted: something was written:\n%s", d)
	}

	// The way to ship version 5: sign it, install it.
	stage := filepath.Join(t.TempDir(), "apps")
	put(t, stage, "", appV2, "")
	smf := filepath.Join(filepath.Dir(stage), "v5.manifest")
	r = dualpart(t, "manifest", "write", "--dir", stage, "--tag", filepath.Join(filepath.Dir(stage), "none"),
		"--manifest", smf, "--version", "5", "--name", "app", "--sign", secret)
	if r.code != 0 {
		t.Fatalf("manifest write of the release = %d\n%s", r.code, r.stderr)
	}
	if r := dualpart(t, append([]string{"install", "--from", stage, "--version", "5"}, flags...)...); r.code != 1 ||
		!strings.Contains(r.stderr+r.stdout, "signed manifest") {
		t.Errorf("install --version with a keyring = %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = dualpart(t, append([]string{"install", "--from", stage, "--manifest", smf}, flags...)...)
	if r.code != 0 {
		t.Fatalf("install --manifest = %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	checkSide(t, l.primary, l.primaryTag, appV2, "5")
	checkSide(t, l.backup, l.backupTag, appV2, "5")
	r = dualpart(t, append([]string{"status", "--json"}, flags...)...)
	if st := pairs(t, r.stdout); r.code != 0 || st[0].Primary.State != "ok" || st[0].Backup.State != "ok" || st[0].Action != "none" {
		t.Errorf("status after install = %d %+v", r.code, st)
	}
}

// TestConfigKeyring: a config pair's keyring and name.
func TestConfigKeyring(t *testing.T) {
	tool := minisignTool(t)
	root := t.TempDir()
	l := layoutAt(root, "params")
	keys := filepath.Join(root, "keys")
	if err := os.Mkdir(keys, 0o755); err != nil {
		t.Fatal(err)
	}
	_, secret := keyPair(t, tool, keys, "build")
	put(t, l.primary, l.primaryTag, appV1, "1\n")
	if r := dualpart(t, "manifest", "write", "--dir", l.primary, "--tag", l.primaryTag, "--name", "params", "--sign", secret); r.code != 0 {
		t.Fatal(r.stderr)
	}
	cfg := writeConfig(t, root, pairEntry("params", "params", `, "keyring": "keys"`))
	r := dualpart(t, "reconcile", "--json", "--config", cfg)
	if out := pairs(t, r.stdout); r.code != 0 || out[0].Primary.State != "ok" || out[0].Action != "primary-to-backup" {
		t.Errorf("config pair params = %d %+v\n%s", r.code, out, r.stderr)
	}
	cfg = writeConfig(t, root, pairEntry("app", "params", `, "keyring": "keys"`))
	if r := dualpart(t, "status", "--json", "--config", cfg); r.code != 1 || !strings.Contains(r.stdout, `signed for pair \"params\"`) {
		t.Errorf("config pair app = %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := dualpart(t, "status", "--config", cfg, "--name", "x"); r.code != 2 {
		t.Errorf("--name with --config = %d, want 2", r.code)
	}
	if r := dualpart(t, "status", "--keyring", filepath.Join(root, "nowhere.pub")); r.code != 2 {
		t.Errorf("--keyring of a missing file = %d, want 2\n%s", r.code, r.stderr)
	}
}

// TestManifestFIFO: a FIFO where install's or check's manifest should be
// is refused at once, not waited on.
func TestManifestFIFO(t *testing.T) {
	l := newLayout(t)
	put(t, l.primary, l.primaryTag, appV1, "1\n")
	stage := filepath.Join(t.TempDir(), "apps")
	put(t, stage, "", appV2, "")
	fifo := filepath.Join(filepath.Dir(stage), "v2.manifest")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		append([]string{"install", "--from", stage, "--manifest", fifo}, l.flags()...),
		{"manifest", "check", "--dir", stage, "--tag", l.primaryTag, "--manifest", fifo},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, err := exec.CommandContext(ctx, binary, args...).CombinedOutput()
		blocked := ctx.Err() != nil
		cancel()
		if blocked {
			t.Fatalf("dualpart %s blocked on a FIFO manifest", args[0])
		}
		if err == nil || !strings.Contains(string(out), "not a regular file") && !strings.Contains(string(out), "named pipe") {
			t.Errorf("dualpart %s with a FIFO manifest: %v\n%s", args[0], err, out)
		}
	}
}
