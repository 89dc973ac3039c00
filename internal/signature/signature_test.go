package signature

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"aead.dev/minisign"
)

func keys(t testing.TB) (pub, secret []byte) {
	t.Helper()
	p, s, err := minisign.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ = p.MarshalText()
	secret, _ = s.MarshalText()
	return pub, secret
}

func ring(t testing.TB, pubs ...[]byte) *Keyring {
	t.Helper()
	k := &Keyring{}
	for _, p := range pubs {
		if err := k.Add(p, "test"); err != nil {
			t.Fatal(err)
		}
	}
	return k
}

func TestSignVerify(t *testing.T) {
	pub, secret := keys(t)
	otherPub, otherSecret := keys(t)
	msg := []byte("dualpart-manifest 2\nversion \"1\"\n")
	sig, _, err := Sign(secret, bytes.NewReader(msg), "test")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(sig, []byte("untrusted comment: ")) {
		t.Errorf("signature does not start with minisign's comment line:\n%s", sig)
	}
	if err := Verify(ring(t, pub), msg, sig); err != nil {
		t.Errorf("Verify(genuine) = %v", err)
	}
	if err := Verify(ring(t, otherPub, pub), msg, sig); err != nil {
		t.Errorf("Verify with two keys = %v", err)
	}
	for name, tc := range map[string]struct {
		k   *Keyring
		msg []byte
		sig []byte
		say string
	}{
		"changed message":  {ring(t, pub), append(bytes.Clone(msg), 'x'), sig, "bad signature"},
		"unknown key":      {ring(t, otherPub), msg, sig, "not in the keyring"},
		"truncated":        {ring(t, pub), msg, sig[:len(sig)/2], "does not parse"},
		"empty":            {ring(t, pub), msg, nil, "does not parse"},
		"garbage":          {ring(t, pub), msg, []byte("untrusted comment: a\n!!!\ntrusted comment: b\n!!!\n"), "does not parse"},
		"trusted comment":  {ring(t, pub), msg, bytes.Replace(sig, []byte("trusted comment: test"), []byte("trusted comment: tesT"), 1), "bad signature"},
		"other key's sign": {ring(t, pub), msg, mustSign(t, otherSecret, msg), "not in the keyring"},
	} {
		err := Verify(tc.k, tc.msg, tc.sig)
		if !errors.Is(err, ErrUntrusted) || !strings.Contains(err.Error(), tc.say) {
			t.Errorf("%s: Verify = %v; want ErrUntrusted saying %q", name, err, tc.say)
		}
	}
}

func mustSign(t *testing.T, secret, msg []byte) []byte {
	t.Helper()
	sig, _, err := Sign(secret, bytes.NewReader(msg), "x")
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

func TestLegacy(t *testing.T) {
	p, s, err := minisign.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := p.MarshalText()
	msg := []byte("legacy message")
	sig := minisign.Sign(s, msg) // not prehashed
	if err := Verify(ring(t, pub), msg, sig); err != nil {
		t.Errorf("Verify(legacy) = %v", err)
	}
	if err := Verify(ring(t, pub), []byte("legacy messagf"), sig); !errors.Is(err, ErrUntrusted) {
		t.Errorf("Verify(legacy, changed) = %v, want ErrUntrusted", err)
	}
}

func TestBadKeys(t *testing.T) {
	k := &Keyring{}
	for _, text := range []string{"", "untrusted comment: x\nnot base64!", "RWQ="} {
		if err := k.Add([]byte(text), "t"); err == nil {
			t.Errorf("Add(%q) = nil error", text)
		}
	}
	if _, _, err := Sign([]byte("nonsense"), strings.NewReader("m"), "c"); err == nil {
		t.Error("Sign with a nonsense key = nil error")
	}
}

// TestMinisignTool checks both directions against the minisign tool
// itself: what it signs (prehashed by default, and legacy) we verify, and
// what we sign it verifies, with its -H (prehashed required) too.
func TestMinisignTool(t *testing.T) {
	tool, err := exec.LookPath("minisign")
	if err != nil {
		t.Skip("the minisign tool is not installed (Debian package minisign; .ci/run installs it)")
	}
	dir := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(tool, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("minisign %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	pubFile, keyFile := filepath.Join(dir, "k.pub"), filepath.Join(dir, "k.key")
	run("-G", "-W", "-p", pubFile, "-s", keyFile)
	pub, _ := os.ReadFile(pubFile)
	secret, _ := os.ReadFile(keyFile)
	msgFile := filepath.Join(dir, "app_ver.txt.manifest")
	msg := bytes.Repeat([]byte("f 0755 0:0 1 3 abc \"bin/app\"\n"), 1000)
	if err := os.WriteFile(msgFile, msg, 0o644); err != nil {
		t.Fatal(err)
	}

	t.Run("minisign signs, we verify", func(t *testing.T) {
		for _, legacy := range []bool{false, true} {
			args := []string{"-S", "-s", keyFile, "-m", msgFile}
			if legacy {
				args = append(args, "-l")
			}
			run(args...)
			sig, _ := os.ReadFile(msgFile + Suffix)
			if err := Verify(ring(t, pub), msg, sig); err != nil {
				t.Errorf("legacy %v: Verify = %v", legacy, err)
			}
			if err := Verify(ring(t, pub), append(bytes.Clone(msg), '\n'), sig); !errors.Is(err, ErrUntrusted) {
				t.Errorf("legacy %v: Verify of another message = %v, want ErrUntrusted", legacy, err)
			}
		}
	})
	t.Run("we sign, minisign verifies", func(t *testing.T) {
		sig, _, err := Sign(secret, bytes.NewReader(msg), "dualpart test")
		if err != nil {
			t.Fatalf("Sign with minisign's secret key = %v", err)
		}
		if err := os.WriteFile(msgFile+Suffix, sig, 0o644); err != nil {
			t.Fatal(err)
		}
		out := run("-V", "-H", "-p", pubFile, "-m", msgFile)
		if !strings.Contains(out, "dualpart test") {
			t.Errorf("minisign -V did not print our trusted comment:\n%s", out)
		}
		if err := os.WriteFile(msgFile, append(bytes.Clone(msg), 'x'), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(tool, "-V", "-p", pubFile, "-m", msgFile).CombinedOutput(); err == nil {
			t.Errorf("minisign -V accepted a changed message:\n%s", out)
		}
	})
	t.Run("an encrypted key is refused with advice", func(t *testing.T) {
		if testing.Short() {
			t.Skip("-short: minisign's scrypt takes seconds")
		}
		cmd := exec.Command(tool, "-G", "-p", filepath.Join(dir, "e.pub"), "-s", filepath.Join(dir, "e.key"))
		cmd.Stdin = strings.NewReader("pw\npw\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Skipf("minisign -G with a password from stdin: %v\n%s", err, out)
		}
		enc, _ := os.ReadFile(filepath.Join(dir, "e.key"))
		if _, _, err := Sign(enc, bytes.NewReader(msg), "x"); err == nil || !strings.Contains(err.Error(), "-W") {
			t.Errorf("Sign with an encrypted key = %v, want advice to use -W", err)
		}
	})
}

// parts is an io.WriterTo writing its parts one Write each, then failing
// with err if set.
type parts struct {
	p   [][]byte
	err error
}

func (w parts) WriteTo(out io.Writer) (int64, error) {
	var n int64
	for _, b := range w.p {
		k, err := out.Write(b)
		n += int64(k)
		if err != nil {
			return n, err
		}
	}
	return n, w.err
}

// VerifyFrom verifies what is written in many writes as the same bytes
// held whole, and a WriteTo that fails is the error, not a verdict.
func TestVerifyFrom(t *testing.T) {
	pub, secret := keys(t)
	msg := bytes.Repeat([]byte("0123456789abcdef entry line\n"), 10000)
	sig := mustSign(t, secret, msg)
	var chunks [][]byte
	for b := msg; len(b) > 0; b = b[min(len(b), 4096):] {
		chunks = append(chunks, b[:min(len(b), 4096)])
	}
	if err := VerifyFrom(ring(t, pub), parts{p: chunks}, sig); err != nil {
		t.Errorf("VerifyFrom(genuine, in %d writes) = %v", len(chunks), err)
	}
	changed := append(chunks[:len(chunks)-1:len(chunks)-1], []byte("x"))
	if err := VerifyFrom(ring(t, pub), parts{p: changed}, sig); !errors.Is(err, ErrUntrusted) {
		t.Errorf("VerifyFrom(changed) = %v, want ErrUntrusted", err)
	}
	broken := errors.New("marshal failed")
	if err := VerifyFrom(ring(t, pub), parts{p: chunks[:3], err: broken}, sig); !errors.Is(err, broken) {
		t.Errorf("VerifyFrom of a failing WriteTo = %v, want its error", err)
	}
}
