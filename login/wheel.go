package login

import (
	"container/heap"
	"sync"
	"time"
)

// deadlines wakes waiters whose wait is over with one timer for all of
// them, so that a held long-poll has no timer of its own.
type deadlines struct {
	clock Clock
	mu    sync.Mutex
	h     deadlineHeap
	timer Timer
	next  time.Time
}

type deadline struct {
	at    time.Time
	ch    chan struct{}
	index int
}

type deadlineHeap []*deadline

func (h deadlineHeap) Len() int           { return len(h) }
func (h deadlineHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h deadlineHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i]; h[i].index = i; h[j].index = j }
func (h *deadlineHeap) Push(x any)        { d := x.(*deadline); d.index = len(*h); *h = append(*h, d) }
func (h *deadlineHeap) Pop() any {
	old := *h
	d := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	d.index = -1
	return d
}

// add returns a channel closed at at, and a function that forgets it.
func (w *deadlines) add(at time.Time) (<-chan struct{}, func()) {
	d := &deadline{at: at, ch: make(chan struct{})}
	w.mu.Lock()
	heap.Push(&w.h, d)
	w.arm()
	w.mu.Unlock()
	return d.ch, func() {
		w.mu.Lock()
		if d.index >= 0 {
			heap.Remove(&w.h, d.index)
		}
		w.mu.Unlock()
	}
}

// arm points the timer at the earliest deadline. w.mu is held.
func (w *deadlines) arm() {
	if len(w.h) == 0 {
		return
	}
	at := w.h[0].at
	if w.timer != nil && !w.next.After(at) {
		return
	}
	if w.timer != nil {
		w.timer.Stop()
	}
	w.next = at
	w.timer = w.clock.AfterFunc(at.Sub(w.clock.Now()), w.fire)
}

func (w *deadlines) fire() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.timer = nil
	now := w.clock.Now()
	for len(w.h) > 0 && !w.h[0].at.After(now) {
		close(heap.Pop(&w.h).(*deadline).ch)
	}
	w.arm()
}
