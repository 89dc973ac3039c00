package main

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// peb writes an erase block at index i of img: EC header, VID header for
// (vol, lnum, sqnum), data from data at offset 128 (phram's layout: VID
// header at 64, data at 128).
func peb(img []byte, i, vol, lnum int, sqnum uint64, data []byte) {
	p := img[i*pebSize : (i+1)*pebSize]
	binary.BigEndian.PutUint32(p[0:], ubiECMagic)
	binary.BigEndian.PutUint32(p[16:], 64)
	binary.BigEndian.PutUint32(p[20:], 128)
	v := p[64:]
	binary.BigEndian.PutUint32(v[0:], ubiVIDMagic)
	binary.BigEndian.PutUint32(v[8:], uint32(vol))
	binary.BigEndian.PutUint32(v[12:], uint32(lnum))
	binary.BigEndian.PutUint64(v[40:], sqnum)
	copy(p[128:], data)
}

// node is a UBIFS data node of inode ino, block blk, with a valid CRC.
func node(ino, blk uint32, sqnum uint64, payload []byte) []byte {
	n := ubifsDataHdr + len(payload)
	b := make([]byte, (n+7)&^7)
	binary.LittleEndian.PutUint32(b[0:], ubifsMagic)
	binary.LittleEndian.PutUint64(b[8:], sqnum)
	binary.LittleEndian.PutUint32(b[16:], uint32(n))
	b[20] = ubifsDataNode
	binary.LittleEndian.PutUint32(b[24:], ino)
	binary.LittleEndian.PutUint32(b[28:], ubifsDataKey<<29|blk)
	copy(b[ubifsDataHdr:], payload)
	binary.LittleEndian.PutUint32(b[4:], ubifsCRC(b[8:n]))
	return b
}

func vtbl(names ...string) []byte {
	b := make([]byte, 128*ubiVtblRecSize)
	for id, n := range names {
		r := b[id*ubiVtblRecSize:]
		binary.BigEndian.PutUint32(r[0:], 10) // reserved PEBs
		binary.BigEndian.PutUint16(r[14:], uint16(len(n)))
		copy(r[16:], n)
	}
	return b
}

func crcOK(img []byte, off int) bool {
	n := int(binary.LittleEndian.Uint32(img[off+16:]))
	return ubifsCRC(img[off+8:off+n]) == binary.LittleEndian.Uint32(img[off+4:])
}

// The injection must hit the live node of each block of the named file on
// the named volume, and nothing else: not the obsolete copy, not another
// inode, not the other volume.
func TestFlipBitsHitsLiveNodesOfOneFile(t *testing.T) {
	img := bytes.Repeat([]byte{0xff}, 8*pebSize)
	peb(img, 0, ubiLayoutVolID, 0, 1, vtbl("system", "usr_data"))
	pay := bytes.Repeat([]byte("x"), 100)
	old := node(65, 3, 10, pay)  // obsolete copy of block 3
	live := node(65, 3, 20, pay) // the one the index points to
	other := node(66, 3, 30, pay)
	b4 := node(65, 4, 15, pay)
	var leb []byte
	for _, n := range [][]byte{old, live, other, b4} {
		leb = append(leb, n...)
	}
	peb(img, 1, 0, 7, 2, leb)
	peb(img, 2, 1, 7, 3, leb) // usr_data: the same nodes, inode 65 there is another file
	offs := map[string]int{"old": 0, "live": len(old), "other": len(old) + len(live), "b4": len(old) + len(live) + len(other)}
	base := 1*pebSize + 128

	vols, err := ubiLayout(img)
	if err != nil {
		t.Fatalf("ubiLayout: %v", err)
	}
	if len(vols["system"]) != 1 || len(vols["usr_data"]) != 1 {
		t.Fatalf("ubiLayout: system %d LEBs, usr_data %d, want 1 each", len(vols["system"]), len(vols["usr_data"]))
	}
	before := append([]byte(nil), img...)
	inodes := map[string]inodeInfo{"primary bin/app": {ino: 65, size: 8192}}
	what, err := flipBits(img, vols, inodes, "primary", "bin/app", 3, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatalf("flipBits: %v", err)
	}
	if !strings.Contains(what, "2 live data nodes") {
		t.Errorf("flipBits said %q, want 2 live data nodes", what)
	}
	for name, want := range map[string]bool{"old": true, "live": false, "other": true, "b4": false} {
		if got := crcOK(img, base+offs[name]); got != want {
			t.Errorf("node %s: CRC valid %v after the injection, want %v", name, got, want)
		}
	}
	if !bytes.Equal(img[2*pebSize:3*pebSize], before[2*pebSize:3*pebSize]) {
		t.Errorf("the injection into system changed usr_data's erase block")
	}
	if _, err := flipBits(img, vols, inodes, "backup", "bin/app", 1, rand.New(rand.NewPCG(1, 2))); err == nil {
		t.Errorf("flipBits of a file with no known inode on the backup: no error")
	}
}

func TestBreakMountAndInjectFile(t *testing.T) {
	img := bytes.Repeat([]byte{0xff}, 4*pebSize)
	peb(img, 0, ubiLayoutVolID, 0, 1, vtbl("system", "usr_data"))
	peb(img, 1, 1, 0, 5, []byte("superblock"))
	peb(img, 2, 1, 0, 4, []byte("older copy"))
	name := filepath.Join(t.TempDir(), "flash.img")
	if err := os.WriteFile(name, img, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := inject(name, "mount:usr_data", nil, rand.New(rand.NewPCG(1, 1))); err != nil {
		t.Fatalf("inject: %v", err)
	}
	got, _ := os.ReadFile(name)
	if !bytes.Equal(got[1*pebSize+128:1*pebSize+138], xorAll([]byte("superblock"))) {
		t.Errorf("LEB 0 of usr_data (the newer copy) not inverted: %q", got[1*pebSize+128:1*pebSize+138])
	}
	if !bytes.Equal(got[2*pebSize:], img[2*pebSize:]) {
		t.Errorf("the older copy of LEB 0 changed")
	}
	if _, err := inject(name, "mount:nosuch", nil, nil); err == nil {
		t.Errorf("inject into a volume that does not exist: no error")
	}
	if _, err := inject(name, "melt", nil, nil); err == nil {
		t.Errorf("inject of an unknown fault: no error")
	}
}

func xorAll(b []byte) []byte {
	out := make([]byte, len(b))
	for i := range b {
		out[i] = b[i] ^ 0xff
	}
	return out
}

func TestSyncPathViolation(t *testing.T) {
	tests := []struct {
		path, counts string
		ok           bool
	}{
		{"syncfs", "syncfs=4 fsync=3 fdatasync=0 sync=0 lost=0", true},
		{"syncfs", "syncfs=0 fsync=46 fdatasync=0 sync=0 lost=0", false},
		{"fsync", "syncfs=0 fsync=46 fdatasync=0 sync=0 lost=0", true},
		{"fsync", "syncfs=1 fsync=46 fdatasync=0 sync=0 lost=0", false},
		{"fsync", "syncfs=0 fsync=0 fdatasync=0 sync=0 lost=0", false},
		{"fsync", "syncfs=0 fsync=46 fdatasync=0 sync=0 lost=3", false},
		{"fsync", "error=mount_tracefs", false},
		{"syncfs", "", false},
	}
	for _, tc := range tests {
		if v := syncPathViolation(tc.path, tc.counts); (v == "") != tc.ok {
			t.Errorf("syncPathViolation(%q, %q) = %q, want ok %v", tc.path, tc.counts, v, tc.ok)
		}
	}
}

func TestChainDelaysGrowWithinTheCopy(t *testing.T) {
	d, touch := 40*time.Second, 10*time.Second
	for i := 0; i < 50; i++ {
		ds := chainDelays(7, i, 3, d, touch)
		for k, x := range ds {
			lo, hi := time.Duration(k)*(d-touch)/3, time.Duration(k+1)*(d-touch)/3
			if x < lo || x > hi {
				t.Fatalf("chain %d cut %d at %v, want in [%v, %v]", i, k, x, lo, hi)
			}
		}
	}
}

func TestMediaFaultsCycleEveryKind(t *testing.T) {
	seen := map[string]bool{}
	for j := 0; j < len(mediaKinds); j++ {
		f := splitFault(mediaFault(j))
		seen[f[0]+":"+f[1]] = true
		if f[0] == "bits" && len(f) != 3 {
			t.Errorf("mediaFault(%d) = %q: no target file", j, mediaFault(j))
		}
	}
	if len(seen) != len(mediaKinds) {
		t.Errorf("the first %d faults cover %d kinds: %v", len(mediaKinds), len(seen), seen)
	}
}
