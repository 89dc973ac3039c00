package manifest

import "unsafe"

// arena hands out strings that share large blocks of memory: a parsed
// manifest's paths then cost their bytes and nothing more, where a string
// of its own each would cost a heap object rounded up to its size class
// (a 33-byte path takes 48 bytes) and an allocation per entry. A block is
// never written again where it was handed out, so the strings stay
// immutable; it lives as long as any string in it does.
type arena struct {
	block []byte
	next  int // the size of the next block
}

const (
	arenaMin = 1 << 10
	arenaMax = 64 << 10
)

// string returns b as a string backed by the arena.
func (a *arena) string(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(b) > cap(a.block)-len(a.block) {
		if len(b) > arenaMax/8 {
			return string(b) // a long one would waste the rest of a block
		}
		// Blocks grow so that a small manifest takes little.
		a.next = min(max(2*a.next, arenaMin), arenaMax)
		a.block = make([]byte, 0, a.next)
	}
	start := len(a.block)
	a.block = append(a.block, b...)
	return unsafe.String(&a.block[start], len(b))
}
