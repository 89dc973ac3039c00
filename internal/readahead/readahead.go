// Package readahead warms the page cache for the files a sequential reader
// is about to open, so that the medium's latency is paid by helper
// goroutines while the reader works on the file before: a copy of many
// small files on a cold cache otherwise waits for each file's inode and
// data in turn.
package readahead

import "sync"

// Ahead runs the helpers of one reader.
type Ahead struct {
	names  []string
	window int
	warm   func(name string)

	mu      sync.Mutex
	cond    sync.Cond
	next    int  // the next index a helper takes
	pos     int  // the reader is done with every index below pos
	stopped bool // Stop was called
	wg      sync.WaitGroup
}

// Start starts workers goroutines that call warm on names[i], in order,
// for each i whose name is not empty, never more than window entries past
// the reader's position (see Passed), and never on an entry the reader has
// passed. warm's errors are its own to ignore: a hint that fails costs the
// reader only the wait it would have had anyway.
func Start(names []string, workers, window int, warm func(name string)) *Ahead {
	a := &Ahead{names: names, window: max(window, 1), warm: warm}
	a.cond.L = &a.mu
	for range max(workers, 1) {
		a.wg.Add(1)
		go a.work()
	}
	return a
}

func (a *Ahead) work() {
	defer a.wg.Done()
	for {
		a.mu.Lock()
		for !a.stopped && a.next < len(a.names) && a.next >= a.pos+a.window {
			a.cond.Wait()
		}
		if a.next < a.pos {
			a.next = a.pos // the reader got there first
		}
		if a.stopped || a.next >= len(a.names) {
			a.mu.Unlock()
			return
		}
		k := a.next
		a.next++
		a.mu.Unlock()
		if a.names[k] != "" {
			a.warm(a.names[k])
		}
	}
}

// Passed tells the helpers that the reader is done with names[i] and every
// entry before it, which frees room in the window. On a nil *Ahead (no
// read-ahead) it does nothing.
func (a *Ahead) Passed(i int) {
	if a == nil {
		return
	}
	a.mu.Lock()
	if i+1 > a.pos {
		a.pos = i + 1
		a.cond.Broadcast()
	}
	a.mu.Unlock()
}

// Stop stops the helpers and waits for the calls to warm under way. On a
// nil *Ahead it does nothing.
func (a *Ahead) Stop() {
	if a == nil {
		return
	}
	a.mu.Lock()
	a.stopped = true
	a.cond.Broadcast()
	a.mu.Unlock()
	a.wg.Wait()
}
