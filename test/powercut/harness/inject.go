package main

// Media faults, injected into the flash image file between boots, from
// the host (see ../README.md, "Media faults"). The image is parsed as
// UBI lays it out (erase-counter and volume-identifier headers in every
// 128 KiB physical erase block, the volume table in the layout volume)
// and, inside a volume's logical erase blocks, as UBIFS writes its nodes
// (common header: magic, CRC, sequence number, length, type).

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"sort"
)

const (
	pebSize        = 131072 // phram's erase size (init.sh)
	ubiECMagic     = 0x55424923
	ubiVIDMagic    = 0x55424921
	ubiLayoutVolID = 0x7fffefff
	ubiVtblRecSize = 172
	ubifsMagic     = 0x06101831
	ubifsDataNode  = 1
	ubifsDataKey   = 1
	ubifsDataHdr   = 48 // common header 24, key 16, size 4, compr_type 2, compr_size 2
)

// leb is one mapped logical erase block: where its data starts in the
// image.
type leb struct {
	vol, lnum int
	sqnum     uint64
	data      int // offset of its data area in the image
	size      int // its data area's length
}

// ubiLayout returns, per volume name, its logical erase blocks by number
// (for a LEB in two PEBs, the copy with the higher sequence number: the
// one UBI attaches).
func ubiLayout(img []byte) (map[string]map[int]leb, error) {
	byVol := map[int]map[int]leb{}
	for off := 0; off+pebSize <= len(img); off += pebSize {
		p := img[off : off+pebSize]
		if binary.BigEndian.Uint32(p[0:]) != ubiECMagic {
			continue
		}
		vidOff, dataOff := int(binary.BigEndian.Uint32(p[16:])), int(binary.BigEndian.Uint32(p[20:]))
		if vidOff <= 0 || vidOff+64 > pebSize || dataOff <= 0 || dataOff >= pebSize {
			continue
		}
		v := p[vidOff:]
		if binary.BigEndian.Uint32(v[0:]) != ubiVIDMagic {
			continue // erased: no VID header
		}
		l := leb{vol: int(binary.BigEndian.Uint32(v[8:])), lnum: int(binary.BigEndian.Uint32(v[12:])),
			sqnum: binary.BigEndian.Uint64(v[40:]), data: off + dataOff, size: pebSize - dataOff}
		if byVol[l.vol] == nil {
			byVol[l.vol] = map[int]leb{}
		}
		if old, ok := byVol[l.vol][l.lnum]; !ok || l.sqnum > old.sqnum {
			byVol[l.vol][l.lnum] = l
		}
	}
	vt, ok := byVol[ubiLayoutVolID][0]
	if !ok {
		return nil, fmt.Errorf("no UBI volume table in the image")
	}
	names := map[string]map[int]leb{}
	for id := 0; (id+1)*ubiVtblRecSize <= vt.size && id < 128; id++ {
		r := img[vt.data+id*ubiVtblRecSize:]
		n := int(binary.BigEndian.Uint16(r[14:]))
		if binary.BigEndian.Uint32(r[0:]) == 0 || n == 0 || n > 127 {
			continue
		}
		names[string(r[16:16+n])] = byVol[id]
	}
	return names, nil
}

// dataNode is a UBIFS data node with a valid CRC: block block of inode
// ino, at off in the image, len bytes.
type dataNode struct {
	ino, block uint32
	sqnum      uint64
	off, len   int
}

// dataNodes scans a volume's LEBs for valid UBIFS data nodes.
func dataNodes(img []byte, lebs map[int]leb) []dataNode {
	var out []dataNode
	for _, l := range lebs {
		b := img[l.data : l.data+l.size]
		for o := 0; o+24 <= len(b); {
			if binary.LittleEndian.Uint32(b[o:]) != ubifsMagic {
				o += 8
				continue
			}
			n := int(binary.LittleEndian.Uint32(b[o+16:]))
			if n < 24 || o+n > len(b) || ubifsCRC(b[o+8:o+n]) != binary.LittleEndian.Uint32(b[o+4:]) {
				o += 8
				continue
			}
			if b[o+20] == ubifsDataNode && n > ubifsDataHdr {
				k := binary.LittleEndian.Uint32(b[o+28:])
				if k>>29 == ubifsDataKey {
					out = append(out, dataNode{ino: binary.LittleEndian.Uint32(b[o+24:]), block: k & (1<<29 - 1),
						sqnum: binary.LittleEndian.Uint64(b[o+8:]), off: l.data + o, len: n})
				}
			}
			o += (n + 7) &^ 7
		}
	}
	return out
}

// ubifsCRC is UBIFS's node CRC: crc32 (IEEE, reflected) seeded with
// 0xFFFFFFFF and not inverted at the end.
func ubifsCRC(b []byte) uint32 { return ^crc32.ChecksumIEEE(b) }

// liveNodes keeps, per block of inode ino, the node with the highest
// sequence number: the one the index points to (older ones are
// obsolete, left for garbage collection).
func liveNodes(nodes []dataNode, ino uint32) []dataNode {
	best := map[uint32]dataNode{}
	for _, d := range nodes {
		if d.ino != ino {
			continue
		}
		if o, ok := best[d.block]; !ok || d.sqnum > o.sqnum {
			best[d.block] = d
		}
	}
	out := make([]dataNode, 0, len(best))
	for _, d := range best {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].block < out[j].block })
	return out
}

// volumeOf is the UBI volume holding a side.
var volumeOf = map[string]string{"primary": "system", "backup": "usr_data"}

// flipBits flips one bit in the data of up to n live data nodes of the
// file (side, path) (inode from the setup boot's POWERCUT-INODE lines):
// a read of those blocks then fails UBIFS's CRC check. It returns what it
// did.
func flipBits(img []byte, vols map[string]map[int]leb, inodes map[string]inodeInfo, side, path string, n int, rng *rand.Rand) (string, error) {
	ii, ok := inodes[side+" "+path]
	if !ok {
		return "", fmt.Errorf("no inode known for %s %s", side, path)
	}
	lebs := vols[volumeOf[side]]
	if lebs == nil {
		return "", fmt.Errorf("no UBI volume %s in the image", volumeOf[side])
	}
	live := liveNodes(dataNodes(img, lebs), uint32(ii.ino))
	if len(live) == 0 {
		return "", fmt.Errorf("%s %s (inode %d): no data node found on %s", side, path, ii.ino, volumeOf[side])
	}
	rng.Shuffle(len(live), func(i, j int) { live[i], live[j] = live[j], live[i] })
	if n > len(live) {
		n = len(live)
	}
	var blocks []uint32
	for _, d := range live[:n] {
		at := d.off + ubifsDataHdr + rng.IntN(d.len-ubifsDataHdr)
		img[at] ^= 1 << rng.IntN(8)
		blocks = append(blocks, d.block)
	}
	return fmt.Sprintf("%s %s (inode %d on %s, %d live data nodes): one bit flipped in blocks %v", side, path, ii.ino, volumeOf[side], len(live), blocks), nil
}

// breakMount damages volume vol's UBIFS superblock (LEB 0): every byte
// of its first 4 KiB inverted, so the mount fails its CRC check.
func breakMount(img []byte, vols map[string]map[int]leb, vol string) (string, error) {
	l, ok := vols[vol][0]
	if !ok {
		return "", fmt.Errorf("volume %s has no LEB 0 in the image", vol)
	}
	for i := l.data; i < l.data+4096; i++ {
		img[i] ^= 0xff
	}
	return fmt.Sprintf("%s: superblock (LEB 0, image offset %d) inverted over 4 KiB", vol, l.data), nil
}

// inject applies fault (guest/media.go's names) to the image file name.
func inject(name, fault string, inodes map[string]inodeInfo, rng *rand.Rand) (string, error) {
	img, err := os.ReadFile(name)
	if err != nil {
		return "", err
	}
	vols, err := ubiLayout(img)
	if err != nil {
		return "", err
	}
	var what string
	f := splitFault(fault)
	switch {
	case len(f) == 3 && f[0] == "bits" && f[1] == "both":
		a, err := flipBits(img, vols, inodes, "primary", f[2], 3, rng)
		if err != nil {
			return "", err
		}
		b, err := flipBits(img, vols, inodes, "backup", f[2], 3, rng)
		if err != nil {
			return "", err
		}
		what = a + "; " + b
	case len(f) == 3 && f[0] == "bits":
		what, err = flipBits(img, vols, inodes, f[1], f[2], 3, rng)
	case len(f) == 2 && f[0] == "mount":
		what, err = breakMount(img, vols, f[1])
	default:
		err = fmt.Errorf("unknown fault %q", fault)
	}
	if err != nil {
		return "", err
	}
	return what, os.WriteFile(name, img, 0o644)
}

func splitFault(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ':' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return out
}
