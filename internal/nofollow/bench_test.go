package nofollow

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/spf13/afero"
)

// BenchmarkOpen opens and reads small files, as a first copy does.
func BenchmarkOpen(b *testing.B) {
	dir := b.TempDir()
	names := make([]string, 256)
	for i := range names {
		names[i] = filepath.Join(dir, fmt.Sprint(i))
		if err := os.WriteFile(names[i], make([]byte, 500), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	fsys := afero.NewOsFs()
	buf := make([]byte, 4096)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f, err := Open(fsys, names[i%len(names)])
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(f, buf[:500]); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}
