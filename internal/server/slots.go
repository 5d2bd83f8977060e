package server

import (
	"context"
	"sync"
)

// slots bound how many deployments this process captures at once
// (max_deployments): a deployment takes a slot before it tries its
// repository's lock and gives it back when its agent stops, so a full
// process leaves the rest to its peers.
type slots struct {
	mu      sync.Mutex
	max     int // 0: no limit
	used    int
	changed chan struct{} // closed when a slot is given back
}

func newSlots(max int) *slots { return &slots{max: max, changed: make(chan struct{})} }

// acquire takes a slot, waiting while none is free (calling waiting once
// it starts to wait). It returns false when ctx ends first.
func (s *slots) acquire(ctx context.Context, waiting func()) bool {
	told := false
	for {
		s.mu.Lock()
		if s.max == 0 || s.used < s.max {
			s.used++
			s.mu.Unlock()
			return true
		}
		ch := s.changed
		s.mu.Unlock()
		if !told {
			waiting()
			told = true
		}
		select {
		case <-ctx.Done():
			return false
		case <-ch:
		}
	}
}

// release gives a slot back and wakes the waiting.
func (s *slots) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.used--
	close(s.changed)
	s.changed = make(chan struct{})
}
