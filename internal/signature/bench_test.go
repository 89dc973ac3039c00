package signature

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/dualpart/backup/internal/manifest"
)

// BenchmarkVerifyManifest verifies the signature of a manifest of 100,000
// files, as a copy on a pair with a keyring does: marshalled whole then
// verified (as before VerifyFrom), and streamed. Compare B/op:
//
//	go test -run '^$' -bench VerifyManifest -benchmem ./internal/signature
func BenchmarkVerifyManifest(b *testing.B) {
	m := &manifest.Manifest{Version: "7", Name: "app"}
	for i := range 100000 {
		m.Entries = append(m.Entries, manifest.Entry{
			Path: fmt.Sprintf("d%03d/s%d/file%06d.dat", i%100, (i/100)%7, i), Type: manifest.File,
			Mode: 0o644, Size: int64(100 + i%900), Owned: true, ModTime: 1796097074361590782,
		})
	}
	pub, secret := keys(b)
	sig, _, err := Sign(secret, bytes.NewReader(m.Marshal()), "bench")
	if err != nil {
		b.Fatal(err)
	}
	k := ring(b, pub)
	b.Run("whole", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if err := Verify(k, m.Marshal(), sig); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("streamed", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if err := VerifyFrom(k, m, sig); err != nil {
				b.Fatal(err)
			}
		}
	})
}
