// Package readahead warms the page cache for the files a sequential reader
// is about to open, so that the medium's latency is paid by helper
// goroutines while the reader works on the file before: a copy of many
// small files on a cold cache otherwise waits for each file's inode and
// data in turn.
package readahead

import "sync"

// Ahead runs the helpers of one reader.
type Ahead struct {
	n      int
	window int
	warm   func(i int)

	mu      sync.Mutex
	cond    sync.Cond
	next    int  // the next index a helper takes
	pos     int  // the reader is done with every index below pos
	stopped bool // Stop was called
	wg      sync.WaitGroup
}

// Start starts workers goroutines that call warm(i) for i from 0 to n-1,
// in order, never more than window entries past the reader's position
// (see Passed), and never on an entry the reader has passed. warm names
// the entry itself (and returns at once for one not to warm): no list of
// n names is held. warm's errors are its own to ignore: a hint that fails costs the
// reader only the wait it would have had anyway.
func Start(n, workers, window int, warm func(i int)) *Ahead {
	a := &Ahead{n: n, window: max(window, 1), warm: warm}
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
		for !a.stopped && a.next < a.n && a.next >= a.pos+a.window {
			a.cond.Wait()
		}
		if a.next < a.pos {
			a.next = a.pos // the reader got there first
		}
		if a.stopped || a.next >= a.n {
			a.mu.Unlock()
			return
		}
		k := a.next
		a.next++
		a.mu.Unlock()
		a.warm(k)
	}
}

// Passed tells the helpers that the reader is done with entry i and every
// entry before it, which frees room in the window. On a nil *Ahead (no
// read-ahead) it does nothing.
//
// Waiting helpers are woken once a quarter of the window is free, not at
// every entry: a copy of many small files passes an entry every few
// microseconds, and waking every helper each time (each woken helper a
// thread switch, most of them to find the one free slot taken) cost a
// 100,000-file first copy about a tenth of its time. The entry the reader
// is at is always one a helper has taken while the free room is under a
// quarter, so the reader never waits on an entry nobody will warm.
func (a *Ahead) Passed(i int) {
	if a == nil {
		return
	}
	a.mu.Lock()
	if i+1 > a.pos {
		a.pos = i + 1
		if a.next < a.n && a.pos+a.window-a.next >= a.slack() {
			a.cond.Broadcast()
		}
	}
	a.mu.Unlock()
}

// slack is the free room in the window at which waiting helpers are woken.
func (a *Ahead) slack() int { return max(a.window/4, 1) }

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
