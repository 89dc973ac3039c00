// Package signature checks and makes minisign signatures of manifests, in
// minisign's own format (https://jedisct1.github.io/minisign/), so that the
// standard minisign tool and dualpart each verify what the other signed.
//
// The format is aead.dev/minisign's implementation; this package adds what
// a boot needs around it: a keyring of public key files, bounded reads of
// bytes that come from flash, the verification of a stream as it is parsed
// (so that the bytes verified are the bytes used, never read twice), and
// errors that say why a signature is refused.
package signature

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"aead.dev/minisign"
)

// Suffix is appended to a manifest's path to name its signature.
const Suffix = ".minisig"

// MaxSize bounds a signature file read from flash: minisign's four lines
// are about 300 bytes with its default comments.
const MaxSize = 4096

// MaxLegacy bounds the message of a legacy (not prehashed) signature,
// which must be held whole to be verified.
const MaxLegacy = 64 << 20

// ErrUntrusted is wrapped by every error that refuses a signature.
var ErrUntrusted = errors.New("untrusted")

// A Keyring is a set of minisign public keys.
type Keyring struct {
	keys map[uint64]minisign.PublicKey
	from map[uint64]string // where each key was read, for messages
}

// Add parses a minisign public key file's text (an optional "untrusted
// comment:" line, then the key in base64) and adds the key; from names it
// in messages.
func (k *Keyring) Add(text []byte, from string) error {
	var pub minisign.PublicKey
	if err := pub.UnmarshalText(bytes.TrimSpace(text)); err != nil {
		return fmt.Errorf("public key %s: %v", from, err)
	}
	if k.keys == nil {
		k.keys, k.from = map[uint64]minisign.PublicKey{}, map[uint64]string{}
	}
	k.keys[pub.ID()], k.from[pub.ID()] = pub, from
	return nil
}

// Len returns the number of keys.
func (k *Keyring) Len() int { return len(k.keys) }

// IDs returns the keys' IDs as minisign prints them, sorted.
func (k *Keyring) IDs() []string {
	ids := make([]string, 0, len(k.keys))
	for id := range k.keys {
		ids = append(ids, KeyID(id))
	}
	sort.Strings(ids)
	return ids
}

// KeyID formats a key ID as minisign prints it: 16 upper-case hex digits.
func KeyID(id uint64) string { return fmt.Sprintf("%016X", id) }

// A Check verifies one signature over the bytes of a stream read through
// Reader. It is made before the stream is read, so that the signature's
// key is known not to be in the keyring before anything else is done.
type Check struct {
	keyring *Keyring
	raw     []byte
	sig     minisign.Signature
	key     minisign.PublicKey
	hashed  *minisign.Reader // prehashed: the BLAKE2b-512 of what was read
	legacy  *bytes.Buffer    // legacy: what was read, held whole
	over    bool             // more than MaxLegacy bytes were read
}

// NewCheck parses a signature file's text and finds its key in k.
func NewCheck(k *Keyring, sig []byte) (*Check, error) {
	c := &Check{keyring: k, raw: sig}
	if err := c.sig.UnmarshalText(sig); err != nil {
		msg := strings.TrimPrefix(err.Error(), "minisign: ")
		return nil, fmt.Errorf("%w: signature does not parse: %s", ErrUntrusted, msg)
	}
	key, ok := k.keys[c.sig.KeyID]
	if !ok {
		return nil, fmt.Errorf("%w: signed by key %s, which is not in the keyring (%s)",
			ErrUntrusted, KeyID(c.sig.KeyID), strings.Join(k.IDs(), ", "))
	}
	c.key = key
	return c, nil
}

// Reader returns r, read through the check: what is read through it is
// what Verify verifies.
func (c *Check) Reader(r io.Reader) io.Reader {
	if c.sig.Algorithm == minisign.HashEdDSA {
		c.hashed = minisign.NewReader(r)
		return c.hashed
	}
	c.legacy = new(bytes.Buffer)
	return io.TeeReader(r, writerFunc(func(p []byte) (int, error) {
		if c.legacy.Len()+len(p) > MaxLegacy {
			c.over = true
			return len(p), nil
		}
		return c.legacy.Write(p)
	}))
}

// Verify reports whether the signature holds over what was read through
// Reader, by the key NewCheck found, trusted comment included.
func (c *Check) Verify() error {
	var ok bool
	switch {
	case c.hashed != nil:
		ok = c.hashed.Verify(c.key, c.raw)
	case c.legacy != nil && !c.over:
		ok = minisign.Verify(c.key, c.legacy.Bytes(), c.raw)
	case c.over:
		return fmt.Errorf("%w: a legacy signature over more than %d bytes (sign with minisign's default, prehashed)", ErrUntrusted, MaxLegacy)
	default:
		return fmt.Errorf("%w: nothing was read to verify", ErrUntrusted)
	}
	if !ok {
		return fmt.Errorf("%w: bad signature by key %s (%s): the manifest is not what was signed",
			ErrUntrusted, KeyID(c.key.ID()), c.keyring.from[c.key.ID()])
	}
	return nil
}

// KeyID returns the ID of the key the signature names.
func (c *Check) KeyID() string { return KeyID(c.sig.KeyID) }

// Verify checks sig over message with k.
func Verify(k *Keyring, message, sig []byte) error {
	return VerifyFrom(k, bytes.NewReader(message), sig)
}

// VerifyFrom checks sig with k over what message writes, as it writes it:
// a manifest of 100,000 entries (13 MB) is hashed as it is marshalled,
// never held whole. An error of message's WriteTo is returned.
func VerifyFrom(k *Keyring, message io.WriterTo, sig []byte) error {
	c, err := NewCheck(k, sig)
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	go func() {
		_, err := message.WriteTo(pw)
		pw.CloseWithError(err)
	}()
	_, err = io.Copy(io.Discard, c.Reader(pr))
	// Whatever was left unread, the writer is released.
	pr.CloseWithError(io.ErrClosedPipe)
	if err != nil {
		return err
	}
	return c.Verify()
}

// Sign signs what r holds with a minisign secret key file's text, in
// minisign's default (prehashed) mode, with trusted comment comment. It
// returns the signature file's text and the key's ID.
// Encrypted secret keys are refused: decrypt with minisign first, or make
// the build pipeline's key with "minisign -G -W".
func Sign(secret []byte, r io.Reader, comment string) ([]byte, string, error) {
	var priv minisign.PrivateKey
	if err := priv.UnmarshalText(bytes.TrimSpace(secret)); err != nil {
		if strings.Contains(err.Error(), "encrypted") {
			return nil, "", errors.New("the secret key is encrypted with a password: make an unencrypted one with \"minisign -G -W\", or sign with minisign -S")
		}
		return nil, "", fmt.Errorf("secret key: %s", strings.TrimPrefix(err.Error(), "minisign: "))
	}
	mr := minisign.NewReader(r)
	if _, err := io.Copy(io.Discard, mr); err != nil {
		return nil, "", err
	}
	untrusted := "signature from dualpart secret key " + KeyID(priv.ID())
	return mr.SignWithComments(priv, comment, untrusted), KeyID(priv.ID()), nil
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
