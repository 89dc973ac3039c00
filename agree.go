package backup

import (
	"context"
	"fmt"

	"github.com/dualpart/backup/internal/manifest"
)

// agree handles two intact sides at one version: unverified sides get their
// manifests (once: later boots then find both ok and write nothing), and
// the two manifests are compared.
func (p *Pair) agree(ctx context.Context, pf, bf *found) error {
	for _, f := range []*found{pf, bf} {
		if f.man == nil {
			if err := p.adopt(ctx, f); err != nil {
				return err
			}
		}
	}
	return p.compare(pf, bf)
}

func (p *Pair) compare(pf, bf *found) error {
	return compareEntries(pf.man.Entries, bf.man.Entries)
}

// compareEntries reports how the primary's entries a differ from the
// backup's b, wrapping ErrDiverged.
func compareEntries(a, b []manifest.Entry) error {
	for i := 0; i < len(a) || i < len(b); i++ {
		switch {
		case i == len(a):
			return fmt.Errorf("%w: %q is only on the backup", ErrDiverged, b[i].Path)
		case i == len(b):
			return fmt.Errorf("%w: %q is only on the primary", ErrDiverged, a[i].Path)
		case a[i].Path != b[i].Path || !manifest.SameContent(a[i], b[i]):
			return fmt.Errorf("%w: %q differs", ErrDiverged, a[i].Path)
		}
	}
	return nil
}
