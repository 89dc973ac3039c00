package crashfs

import (
	"fmt"
	"math/rand/v2"
	"path"
	"slices"
	"strings"
)

// maxExhaustive is the most pending units whose every keep/drop subset
// CrashStates lists (2^12 = 4096 states); above it, it samples.
const maxExhaustive = 12

// samples is how many random keep/drop subsets CrashStates draws when there
// are too many pending units to list them all.
const samples = 64

// randomTears is how many seeded states with random tearing CrashStates
// adds when some pending file data can tear.
const randomTears = 8

type decision uint8

const (
	drop decision = iota
	keep
	torn
)

func (d decision) String() string {
	return [...]string{"drop", "keep", "tear"}[d]
}

// unit is one change a crash keeps or drops as a whole: the binding of one
// name in one directory, or the data and metadata of one inode.
type unit struct {
	// Name units: the directory and the name.
	dir   *inode
	entry string

	// Data units: the inode, the data a keep leaves, and the blocks of it
	// that differ from the durable data.
	ino  *inode
	kept []byte
	chgd []int

	label string
}

// choice is one crash outcome: a decision per unit and, in UBIFS mode, how
// many journal operations survive.
type choice struct {
	prefix int
	dec    []decision
	blocks []map[int]bool // torn units: the changed blocks kept
	fsck   []string       // filled in by build
}

// pendingState is what CrashStates, Durable and Pending look at.
type pendingState struct {
	units []unit
	// home is each directory's current name, which fsck keeps if a crash
	// leaves the directory with two.
	home map[*inode]binding
}

type binding struct {
	dir  *inode
	name string
}

// Pending describes every change a crash could still keep or drop, one per
// line: with the strict model the names and inodes whose current state is not
// durable, in UBIFS mode the uncommitted directory operations, in order,
// then the inodes. It is empty when the filesystem is fully durable.
func (s *FS) Pending() []string {
	s.lock()
	defer s.mu.Unlock()
	var out []string
	for i, op := range s.journal {
		out = append(out, fmt.Sprintf("directory operation %d: %s", i+1, op.label))
	}
	for _, u := range s.pending().units {
		out = append(out, u.label)
	}
	return out
}

// CrashStates returns the filesystems a power cut at this instant could
// leave, after reboot: each a new FS whose visible state is its durable
// state, with no crash point, faults or budget, counters at zero, and a
// Describe saying which changes it kept, dropped or tore. Outcomes that bind
// the same names to the same contents are listed once; contents are told
// apart by where they come from (inode, decision, torn blocks), not hashed,
// so listing costs no pass over the data.
//
// With n pending units (see Pending), n <= 12 gives every keep/drop subset,
// at most 2^n states; a larger n gives all-kept, all-dropped and 64 distinct
// subsets drawn with seed. In UBIFS mode the subsets range over the data
// units only and are crossed with every prefix of the uncommitted directory
// operations. Then, where pending file data can tear: for each such inode,
// everything kept but that inode torn (the first half of its changed blocks
// kept, the rest zero) and, with two or more changed blocks, all of them
// zero; and 8 states mixing keep, drop and random tearing, drawn with seed.
// The same seed gives the same list. s itself is not changed.
func (s *FS) CrashStates(seed int64) []*FS {
	return s.CrashStatesWith(seed, Limits{})
}

// Limits bounds the states CrashStatesWith lists. The zero value is what
// CrashStates lists.
type Limits struct {
	// Exhaustive is the most pending units whose every keep/drop subset is
	// listed; above it, Samples distinct subsets are drawn with the seed,
	// besides all-kept and all-dropped. 0 means 12.
	Exhaustive int
	// Samples is how many random subsets are drawn above Exhaustive (and
	// how many random (prefix, subset) pairs above Cross). 0 means 64.
	Samples int
	// Cross bounds, in UBIFS mode, the prefixes × subsets product: above
	// it, every prefix of the uncommitted directory operations is taken
	// with all data kept and with all data dropped, and Samples (prefix,
	// subset) pairs are drawn with the seed. 0 means no bound.
	Cross int
	// Max, if positive, draws at most Max distinct states with the seed
	// from the outcomes the other limits give (torn ones included), and
	// builds only those. 0 means all of them.
	Max int
}

// CrashStatesWith is CrashStates within lim: CrashStatesWith(seed,
// Limits{}) is CrashStates(seed). A bounded list is drawn from the same
// outcomes, with the same seed giving the same list.
func (s *FS) CrashStatesWith(seed int64, lim Limits) []*FS {
	s.lock()
	defer s.mu.Unlock()
	ps := s.pending()
	rng := rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15))
	exhaustive, nsamples := maxExhaustive, samples
	if lim.Exhaustive > 0 {
		exhaustive = lim.Exhaustive
	}
	if lim.Samples > 0 {
		nsamples = lim.Samples
	}

	var choices []choice
	prefixes := []int{0}
	if s.opts.UBIFS {
		prefixes = nil
		for p := 0; p <= len(s.journal); p++ {
			prefixes = append(prefixes, p)
		}
	}
	subsets := keepDropSubsets(len(ps.units), rng, exhaustive, nsamples)
	if lim.Cross > 0 && len(prefixes)*len(subsets) > lim.Cross {
		n := len(ps.units)
		none, all := make([]decision, n), slices.Repeat([]decision{keep}, n)
		for _, p := range prefixes {
			choices = append(choices, choice{prefix: p, dec: none}, choice{prefix: p, dec: all})
		}
		for range nsamples {
			choices = append(choices, choice{prefix: prefixes[rng.IntN(len(prefixes))], dec: subsets[rng.IntN(len(subsets))]})
		}
	} else {
		for _, p := range prefixes {
			for _, dec := range subsets {
				choices = append(choices, choice{prefix: p, dec: dec})
			}
		}
	}
	choices = append(choices, tornChoices(ps.units, len(s.journal), rng)...)
	order := make([]int, len(choices))
	for i := range order {
		order[i] = i
	}
	if lim.Max > 0 && len(choices) > lim.Max {
		rng.Shuffle(len(order), func(a, b int) { order[a], order[b] = order[b], order[a] })
	}

	seen := map[string]bool{}
	var states []*FS
	var kept []choice
	for _, i := range order {
		if lim.Max > 0 && len(states) == lim.Max {
			break
		}
		c := choices[i]
		st, k := s.build(ps, &c)
		if seen[k] {
			continue
		}
		seen[k] = true
		states = append(states, st)
		kept = append(kept, c)
	}
	for i, st := range states {
		head := fmt.Sprintf("crash state %d of %d (seed %d)", i+1, len(states), seed)
		st.desc = s.describe(head, ps, kept[i])
	}
	return states
}

// Durable returns the filesystem a power cut at this instant leaves if
// every pending change is dropped: only what was synced survives. It is a
// new FS like those of CrashStates; s is not changed.
func (s *FS) Durable() *FS {
	s.lock()
	defer s.mu.Unlock()
	ps := s.pending()
	c := choice{dec: make([]decision, len(ps.units))}
	st, _ := s.build(ps, &c)
	st.desc = s.describe("durable state", ps, c)
	return st
}

// Describe says how this FS was made by CrashStates or Durable: which
// pending changes the crash kept, dropped or tore. It is empty for a
// filesystem from New, and a Clone copies it.
func (s *FS) Describe() string {
	s.lock()
	defer s.mu.Unlock()
	return s.desc
}

// Clone returns a deep copy of s: what readers see, what is durable, lost
// blocks and, in UBIFS mode, the uncommitted directory operations, so
// s.Clone().CrashStates(seed) lists what s.CrashStates(seed) does. Open
// handles, counters, the crash point, faults and the budget are not copied:
// the clone starts fresh. Later changes to either do not show in the other.
func (s *FS) Clone() *FS {
	s.lock()
	defer s.mu.Unlock()
	all := s.collect()
	m := make(map[*inode]*inode, len(all))
	for _, n := range all {
		c := &inode{id: n.id, kind: n.kind, target: n.target, cur: n.cur, dur: n.dur}
		if len(n.lost) > 0 {
			c.lost = make(map[int64]bool, len(n.lost))
			for b := range n.lost {
				c.lost[b] = true
			}
		}
		m[n] = c
	}
	remap := func(src map[string]*inode) map[string]*inode {
		out := make(map[string]*inode, len(src))
		for k, v := range src {
			out[k] = m[v]
		}
		return out
	}
	for _, n := range all {
		if n.kind == kindDir {
			m[n].entries = remap(n.entries)
			m[n].durEntries = remap(n.durEntries)
		}
	}
	out := &FS{opts: s.opts, root: m[s.root], nextID: s.nextID, budget: -1, desc: s.desc}
	for _, op := range s.journal {
		c := dirOp{label: op.label}
		for _, ch := range op.changes {
			c.changes = append(c.changes, entryChange{m[ch.dir], ch.name, m[ch.ino]})
		}
		out.journal = append(out.journal, c)
	}
	return out
}

// collect returns reachable's inodes and marks their data shared, as
// every caller (Clone, CrashStates, Durable) hands it to another FS.
func (s *FS) collect() []*inode {
	order := s.reachable()
	for _, n := range order {
		n.own = false
	}
	return order
}

// reachable returns every inode a crash could leave reachable: those
// reached from the root through current or durable names, and those named
// by an uncommitted journal operation, breadth first in name order.
func (s *FS) reachable() []*inode {
	seen := map[*inode]bool{}
	var order []*inode
	add := func(n *inode) {
		if n != nil && !seen[n] {
			seen[n] = true
			order = append(order, n)
		}
	}
	next := 0
	drain := func() {
		for ; next < len(order); next++ {
			n := order[next]
			for _, name := range unionKeys(n.entries, n.durEntries) {
				add(n.entries[name])
				add(n.durEntries[name])
			}
		}
	}
	add(s.root)
	drain()
	for _, op := range s.journal {
		for _, c := range op.changes {
			add(c.dir)
			add(c.ino)
			drain()
		}
	}
	return order
}

func unionKeys(a, b map[string]*inode) []string {
	keys := sortedKeys(a)
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// pending lists the units a crash decides on.
func (s *FS) pending() pendingState {
	all := s.collect()
	names := s.names(all)
	var units []unit
	for _, n := range all {
		if n.kind != kindSymlink && n.pending() {
			u := unit{ino: n, kept: n.keptData()}
			if n.kind == kindFile {
				u.chgd = changedBlocks(u.kept, n.dur.data)
				u.label = "data " + names[n]
			} else {
				u.label = "metadata " + names[n]
			}
			units = append(units, u)
		}
		if n.kind != kindDir || s.opts.UBIFS {
			continue
		}
		for _, name := range unionKeys(n.entries, n.durEntries) {
			cur, dur := n.entries[name], n.durEntries[name]
			if cur == dur {
				continue
			}
			what := "rebound"
			switch {
			case dur == nil:
				what = "created " + cur.kind.String()
			case cur == nil:
				what = "removed"
			}
			units = append(units, unit{dir: n, entry: name,
				label: fmt.Sprintf("name %s (%s)", path.Join(names[n], name), what)})
		}
	}
	home := map[*inode]binding{}
	s.walkCurrent(func(_ string, d *inode) {
		for name, child := range d.entries {
			if child.kind == kindDir {
				home[child] = binding{d, name}
			}
		}
	})
	return pendingState{units: units, home: home}
}

// names gives each inode a path for descriptions: a current one if it has
// one, else a durable one, else its inode number.
func (s *FS) names(all []*inode) map[*inode]string {
	out := map[*inode]string{}
	s.walkCurrent(func(p string, n *inode) {
		if _, ok := out[n]; !ok {
			out[n] = p
		}
	})
	type item struct {
		p string
		n *inode
	}
	seen := map[*inode]bool{s.root: true}
	queue := []item{{"/", s.root}}
	for len(queue) > 0 {
		it := queue[0]
		queue = queue[1:]
		if _, ok := out[it.n]; !ok {
			out[it.n] = it.p
		}
		for _, name := range sortedKeys(it.n.durEntries) {
			if child := it.n.durEntries[name]; !seen[child] {
				seen[child] = true
				queue = append(queue, item{path.Join(it.p, name), child})
			}
		}
	}
	for _, n := range all {
		if _, ok := out[n]; !ok {
			out[n] = fmt.Sprintf("(inode %d)", n.id)
		}
	}
	return out
}

// keepDropSubsets returns the keep/drop decisions to try for n units: all
// 2^n if n <= maxExhaustive, else all-dropped, all-kept and samples distinct
// random ones.
func keepDropSubsets(n int, rng *rand.Rand, maxExhaustive, samples int) [][]decision {
	var out [][]decision
	if n <= maxExhaustive {
		for mask := 0; mask < 1<<n; mask++ {
			dec := make([]decision, n)
			for i := range dec {
				if mask&(1<<i) != 0 {
					dec[i] = keep
				}
			}
			out = append(out, dec)
		}
		return out
	}
	seen := map[string]bool{}
	add := func(dec []decision) bool {
		k := fmt.Sprint(dec)
		if seen[k] {
			return false
		}
		seen[k] = true
		out = append(out, dec)
		return true
	}
	add(make([]decision, n))
	add(slices.Repeat([]decision{keep}, n))
	for tries, added := 0, 0; added < samples && tries < 16*samples; tries++ {
		dec := make([]decision, n)
		for i := range dec {
			dec[i] = decision(rng.IntN(2))
		}
		if add(dec) {
			added++
		}
	}
	return out
}

// tornChoices returns the states with torn file data (see CrashStates).
func tornChoices(units []unit, journal int, rng *rand.Rand) []choice {
	var tearable []int
	for i, u := range units {
		if len(u.chgd) > 0 {
			tearable = append(tearable, i)
		}
	}
	if len(tearable) == 0 {
		return nil
	}
	allKept := func() choice {
		return choice{
			prefix: journal,
			dec:    slices.Repeat([]decision{keep}, len(units)),
			blocks: make([]map[int]bool, len(units)),
		}
	}
	var out []choice
	for _, i := range tearable {
		c := allKept()
		c.dec[i] = torn
		c.blocks[i] = map[int]bool{}
		for _, b := range units[i].chgd[:len(units[i].chgd)/2] {
			c.blocks[i][b] = true
		}
		out = append(out, c)
		if len(units[i].chgd) >= 2 {
			c := allKept()
			c.dec[i] = torn
			c.blocks[i] = map[int]bool{}
			out = append(out, c)
		}
	}
	for range randomTears {
		c := allKept()
		c.prefix = rng.IntN(journal + 1)
		for i, u := range units {
			if len(u.chgd) == 0 {
				c.dec[i] = decision(rng.IntN(2))
				continue
			}
			c.dec[i] = decision(rng.IntN(3))
			if c.dec[i] == torn {
				c.blocks[i] = map[int]bool{}
				for _, b := range u.chgd {
					if rng.IntN(2) == 0 {
						c.blocks[i][b] = true
					}
				}
			}
		}
		out = append(out, c)
	}
	return out
}

// build makes the filesystem that choice c leaves after reboot, and a key
// equal for two choices that leave the same names bound to the same
// contents. Contents are named by where they come from (inode, decision,
// torn blocks), so two routes to the same bytes get different keys: a
// duplicate listed, never a state lost.
func (s *FS) build(ps pendingState, c *choice) (*FS, string) {
	// The names each directory holds after the crash: the durable ones,
	// changed by the kept name units or the surviving journal prefix.
	after := map[*inode]map[string]*inode{}
	set := func(dir *inode, name string, n *inode) {
		m, ok := after[dir]
		if !ok {
			m = cloneEntries(dir.durEntries)
			after[dir] = m
		}
		if n == nil {
			delete(m, name)
		} else {
			m[name] = n
		}
	}
	if s.opts.UBIFS {
		for _, op := range s.journal[:c.prefix] {
			for _, ch := range op.changes {
				set(ch.dir, ch.name, ch.ino)
			}
		}
	}
	dataUnit := map[*inode]int{}
	for i, u := range ps.units {
		switch {
		case u.ino != nil:
			dataUnit[u.ino] = i
		case c.dec[i] == keep:
			set(u.dir, u.entry, u.dir.entries[u.entry])
		}
	}
	entriesAfter := func(d *inode) map[string]*inode {
		if m, ok := after[d]; ok {
			return m
		}
		return d.durEntries
	}

	// source names where a copy's contents come from, for the key.
	source := func(n *inode) string {
		if i, ok := dataUnit[n]; ok && c.dec[i] == torn {
			return fmt.Sprintf("%d tear %v", n.id, c.blocks[i])
		} else if ok {
			return fmt.Sprintf("%d %v", n.id, c.dec[i])
		}
		return fmt.Sprint(n.id)
	}
	copyOf := func(n *inode) *inode {
		m := n.dur
		if i, ok := dataUnit[n]; ok {
			u := ps.units[i]
			switch c.dec[i] {
			case keep:
				m = meta{data: u.kept, mode: n.cur.mode, mtime: n.cur.mtime}
			case torn:
				m = meta{data: tear(u.kept, u.chgd, c.blocks[i]), mode: n.cur.mode, mtime: n.cur.mtime}
			}
		}
		out := &inode{id: n.id, kind: n.kind, target: n.target, cur: m, dur: m}
		if n.kind == kindDir {
			out.entries = map[string]*inode{}
		}
		return out
	}
	keyLines := []string{source(s.root)}

	// Walk the names that survive from the root. A directory left with two
	// names (a rename whose sides were not both synced) keeps one, as fsck
	// would: its current name if that survives, else the first found. The
	// other names wait in deferred until the walk runs out of current ones.
	type item struct {
		p    string
		cd   *inode // the copy of the directory holding name
		name string
		n    *inode
	}
	copies := map[*inode]*inode{s.root: copyOf(s.root)}
	queue := []item{{p: "/", n: s.root}}
	var deferred []item
	bind := func(it item) {
		cc, ok := copies[it.n]
		if !ok {
			cc = copyOf(it.n)
			copies[it.n] = cc
			if it.n.kind == kindDir {
				queue = append(queue, it)
			}
		}
		it.cd.entries[it.name] = cc // for a file seen before: a hard link
		keyLines = append(keyLines, it.p+" "+source(it.n))
	}
	for len(queue) > 0 || len(deferred) > 0 {
		if len(queue) == 0 {
			it := deferred[0]
			deferred = deferred[1:]
			if _, ok := copies[it.n]; ok {
				c.fsck = append(c.fsck, "second name of a directory dropped: "+it.p)
				continue
			}
			bind(it)
			continue
		}
		it := queue[0]
		queue = queue[1:]
		m := entriesAfter(it.n)
		for _, name := range sortedKeys(m) {
			child := m[name]
			next := item{p: path.Join(it.p, name), cd: copies[it.n], name: name, n: child}
			if child.kind == kindDir {
				if _, ok := copies[child]; ok || ps.home[child] != (binding{it.n, name}) {
					deferred = append(deferred, next)
					continue
				}
			}
			bind(next)
		}
	}
	for _, cc := range copies {
		if cc.kind == kindDir {
			cc.durEntries = cloneEntries(cc.entries)
		}
	}
	slices.Sort(keyLines)
	return &FS{opts: s.opts, root: copies[s.root], nextID: s.nextID, budget: -1}, strings.Join(keyLines, "\n")
}

// describe writes choice c out for Describe.
func (s *FS) describe(head string, ps pendingState, c choice) string {
	parts := []string{head}
	if s.opts.UBIFS {
		parts = append(parts, fmt.Sprintf("directory operations kept: %d of %d", c.prefix, len(s.journal)))
	}
	for i, u := range ps.units {
		d := c.dec[i]
		if d != torn {
			parts = append(parts, d.String()+" "+u.label)
			continue
		}
		var kept []string
		for _, b := range u.chgd {
			if c.blocks[i][b] {
				kept = append(kept, fmt.Sprint(b))
			}
		}
		parts = append(parts, fmt.Sprintf("tear %s (changed blocks %v, kept [%s])",
			u.label, u.chgd, strings.Join(kept, " ")))
	}
	parts = append(parts, c.fsck...)
	if len(ps.units) == 0 && !s.opts.UBIFS {
		parts = append(parts, "nothing pending")
	}
	return strings.Join(parts, "; ")
}
