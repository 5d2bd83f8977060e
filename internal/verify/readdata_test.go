package verify

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// runJobs never holds more than the budget of plaintext at once, runs a
// job larger than the whole budget alone, and still runs every job.
func TestRunJobsMemoryBudget(t *testing.T) {
	const budget = 100
	var mu sync.Mutex
	var inFlight, peak int64
	var alone bool
	sizes := []int64{40, 40, 40, 30, 250, 10, 60, 60, 20, 90}
	jobs := make([]job, len(sizes))
	secondStarted := make(chan struct{})
	for i, n := range sizes {
		jobs[i] = job{plain: n, read: func(context.Context) error {
			switch i {
			case 0: // the first two fit together: the first waits for the second
				select {
				case <-secondStarted:
				case <-time.After(10 * time.Second):
					t.Error("the second job never started beside the first, though both fit the budget")
				}
			case 1:
				close(secondStarted)
			}
			mu.Lock()
			inFlight += min(n, budget)
			peak = max(peak, inFlight)
			if n > budget {
				alone = inFlight == budget
			}
			mu.Unlock()
			time.Sleep(2 * time.Millisecond) // gives other workers the chance to overrun the budget, if they could
			mu.Lock()
			inFlight -= min(n, budget)
			mu.Unlock()
			if i == 3 {
				return errors.New("job 3 fails")
			}
			return nil
		}}
	}
	errs := runJobs(context.Background(), jobs, 8, budget)
	if peak > budget {
		t.Errorf("peak plaintext in flight %d, budget %d", peak, budget)
	}
	if !alone {
		t.Error("the job larger than the budget ran beside others")
	}
	for i, err := range errs {
		if (err != nil) != (i == 3) {
			t.Errorf("job %d: %v", i, err)
		}
	}
}
