package oplog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"golang.org/x/sync/errgroup"

	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/source"
)

// Resume says where capture continues.
type Resume struct {
	// Timeline is the current timeline; empty starts a new one.
	Timeline string
	// After is the last entry already durable (repository or spool).
	After optime.Timestamp
	// Inclusive starts at After itself (first entry of a new timeline).
	Inclusive bool
	// FromStart reads the oplog from its first entry, on a new timeline
	// named repo.TimelineID(optime.Zero): set by Begin when the source's
	// oplog is empty, so the timeline holds every entry the source logs.
	FromStart bool
}

// Begin is where a capture with nothing stored starts: at the newest entry
// of the source's oplog (inclusive: it is the new timeline's first), or,
// when the oplog is empty (a new deployment), at its start (FromStart). It
// asks the source once, so the choice and the timeline's name agree.
func Begin(ctx context.Context, src *source.Source) (Resume, error) {
	newest, err := src.NewestEntry(ctx)
	if err != nil {
		return Resume{}, fmt.Errorf("find where to start capturing: %w", err)
	}
	if newest.IsZero() {
		return Resume{Inclusive: true, FromStart: true}, nil
	}
	return Resume{After: newest, Inclusive: true}, nil
}

// Capture is the pipeline source oplog -> batches -> spool -> repository.
type Capture struct {
	Source *source.Source
	Sink   Sink
	Spool  *Spool
	Resume Resume
	// FlushInterval is the longest an entry waits before its batch is cut.
	FlushInterval time.Duration
	// MaxBatchBytes cuts a batch early once it is this large.
	MaxBatchBytes int
	// DrainTimeout bounds how long a stopping capture keeps uploading.
	DrainTimeout time.Duration
	// UploadFloor is the least time a segment upload may take before it
	// is abandoned as stalled and retried (default 30 s; the segment's
	// size at 32 KiB/s is added).
	UploadFloor time.Duration
	Log         *slog.Logger
	Stats       *Stats
	// Read, when set, replaces tailing the source: it sends entries in
	// order until ctx ends. Benchmarks use it to measure the pipeline
	// alone, fed from recorded entries.
	Read func(ctx context.Context, out chan<- bson.Raw) error
	// CaughtUp is passed to the Tailer (see Tailer.CaughtUp).
	CaughtUp func(last optime.Timestamp, began time.Time)
	// Marked is passed to the Tailer (see Tailer.Marked).
	Marked func(mark source.OplogMark, last optime.Timestamp)
	// PauseOnSpoolError makes a spool write that fails (its filesystem
	// full or read-only) pause capture and retry until it succeeds, as a
	// daemon must; unset, the error ends Run, as a one-shot command wants.
	PauseOnSpoolError bool

	wake chan struct{}
}

// Stats are the capture's live numbers, read by status and metrics.
type Stats struct {
	lastRead      atomic.Uint64 // packed optime
	lastDurable   atomic.Uint64
	Segments      atomic.Int64
	BytesWritten  atomic.Int64
	StorageErrors atomic.Int64
	// SpoolFull is set while capture has stopped reading because the spool is full.
	SpoolFull atomic.Bool
	// The source's oplog edges, measured by WatchSource.
	sourceOldest atomic.Uint64
	sourceNewest atomic.Uint64
	oplogFilling atomic.Bool
	// sourceDownSince is when the source stopped answering WatchSource
	// (Unix nanoseconds; 0 while it answers).
	sourceDownSince atomic.Int64
	mu              sync.Mutex
	lastError       string
	spoolError      string
	timeline        string
	coverage        coverage
	polled          PollMark
	// measuredMark is the mark behind the last newest-entry measurement
	// of a source without SeekByTS (see measureByMark).
	measuredMark source.OplogMark
	hasMeasured  bool
}

// PollMark is a poll's proof of the oplog's newest entry on a source that
// cannot seek its oplog by ts (see Tailer.Marked): Mark was taken just
// before the poll began, and Newest is the newest entry capture had read
// when it ended. While the oplog's mark still equals Mark, Newest is its
// newest entry. Zero until such a poll ends.
type PollMark struct {
	Mark   source.OplogMark
	Newest optime.Timestamp
}

// NotePollMark records a poll's mark: use it as Capture.Marked.
func (s *Stats) NotePollMark(mark source.OplogMark, newest optime.Timestamp) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.polled = PollMark{Mark: mark, Newest: newest}
}

// LastPollMark is the newest poll's mark (see PollMark).
func (s *Stats) LastPollMark() PollMark {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.polled
}

func pack(ts optime.Timestamp) uint64  { return uint64(ts.T)<<32 | uint64(ts.I) }
func unpack(v uint64) optime.Timestamp { return optime.Timestamp{T: uint32(v >> 32), I: uint32(v)} }

// LastRead is the newest entry read from the source.
func (s *Stats) LastRead() optime.Timestamp { return unpack(s.lastRead.Load()) }

// LastDurable is the newest entry stored in the repository.
func (s *Stats) LastDurable() optime.Timestamp { return unpack(s.lastDurable.Load()) }

// LastError is the most recent storage error, empty once uploads succeed.
func (s *Stats) LastError() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastError
}

// Timeline is the timeline being written.
func (s *Stats) Timeline() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.timeline
}

// SpoolError is why the last spool write failed, empty once one succeeds:
// while it is set, capture is paused.
func (s *Stats) SpoolError() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.spoolError
}

func (s *Stats) setSpoolError(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.spoolError = ""
	if err != nil {
		s.spoolError = err.Error()
	}
}

func (s *Stats) setError(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		s.lastError = ""
	} else {
		s.lastError = err.Error()
	}
}

// Run captures until ctx ends, then flushes what it read and uploads for up
// to DrainTimeout. A *GapError return means the source lost the resume point:
// the caller records it and runs a new Capture on a new timeline.
func (c *Capture) Run(ctx context.Context) error {
	if c.Stats == nil {
		c.Stats = &Stats{}
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	c.wake = make(chan struct{}, 1)
	c.Stats.lastDurable.Store(pack(c.Resume.After))
	// A small buffer: when the spool is full, reading the source stops soon.
	entries := make(chan bson.Raw, 64)
	readCtx, stopReading := context.WithCancel(ctx)
	defer stopReading()
	upCtx, stopUploading := context.WithCancel(context.Background())
	defer stopUploading()

	var g errgroup.Group
	var tailErr error
	g.Go(func() error {
		defer close(entries)
		read := c.Read
		if read == nil {
			t := &Tailer{Source: c.Source, After: c.Resume.After, Inclusive: c.Resume.Inclusive, FromStart: c.Resume.FromStart,
				Log: c.Log, CaughtUp: c.CaughtUp, Marked: c.Marked}
			read = t.Run
		}
		tailErr = read(readCtx, entries)
		return nil
	})
	batchDone := make(chan struct{})
	g.Go(func() error {
		defer close(batchDone)
		err := c.batch(ctx, entries)
		// If batching stopped early, stop the tailer and let it finish.
		stopReading()
		for range entries {
		}
		if err != nil && !errors.Is(err, errStopped) {
			return err
		}
		return nil
	})
	g.Go(func() error {
		return c.upload(upCtx, batchDone)
	})
	go func() {
		// Once reading stops (ctx ended or a gap), give uploads a bounded time.
		<-batchDone
		if t := c.DrainTimeout; t > 0 {
			time.AfterFunc(t, stopUploading)
		} else {
			stopUploading()
		}
	}()
	err := g.Wait()
	var gap *GapError
	if errors.As(tailErr, &gap) {
		return gap
	}
	if err != nil {
		return err
	}
	if tailErr != nil && !errors.Is(tailErr, context.Canceled) {
		return tailErr
	}
	return nil
}

// batch cuts entries into batches and puts each in the spool, waiting when
// the spool is full (the source is then not read: nothing is ever dropped).
func (c *Capture) batch(ctx context.Context, entries <-chan bson.Raw) error {
	timeline := c.Resume.Timeline
	// prev chains batches: a continued timeline follows the resume point.
	prev := optime.Zero
	if timeline != "" {
		prev = c.Resume.After
	}
	var cur Batch
	var deadline <-chan time.Time
	flush := func() error {
		if len(cur.Entries) == 0 {
			return nil
		}
		if err := c.spoolBatch(ctx, cur); err != nil {
			return err
		}
		prev = cur.Last
		cur, deadline = Batch{Timeline: timeline}, nil
		return nil
	}

	for {
		select {
		case e, ok := <-entries:
			if !ok {
				return flush()
			}
			ts, err := optime.OfEntry(e)
			if err != nil {
				return err
			}
			if timeline == "" {
				timeline = repo.TimelineID(ts)
				if c.Resume.FromStart {
					timeline = repo.TimelineID(optime.Zero)
				}
				c.Stats.mu.Lock()
				c.Stats.timeline = timeline
				c.Stats.mu.Unlock()
			}
			if len(cur.Entries) == 0 {
				cur.Timeline, cur.Prev = timeline, prev
				deadline = time.After(c.FlushInterval)
			}
			cur.Append(e, ts)
			c.Stats.lastRead.Store(pack(ts))
			if cur.Bytes >= c.MaxBatchBytes {
				if err := flush(); err != nil {
					return err
				}
			}
		case <-deadline:
			if err := flush(); err != nil {
				return err
			}
		}
	}
}

// errStopped ends batching when a stop came while the spool was full: the
// batch in hand is not stored, and neither may anything after it be, or the
// timeline would have a hole.
var errStopped = errors.New("stopped with a full spool")

// spoolBatch stores b in the spool, pausing while the spool is full.
func (c *Capture) spoolBatch(ctx context.Context, b Batch) error {
	for c.Spool.Full(b.Bytes) {
		if !c.Stats.SpoolFull.Swap(true) {
			c.Log.Error("spool is full: capture paused until storage takes uploads again", "spool_bytes", c.Spool.Bytes())
		}
		if err := c.Spool.WaitFreed(ctx); err != nil {
			// Stopping with a full spool: these entries are still in the
			// source's oplog and will be read again after a restart.
			return errStopped
		}
	}
	c.Stats.SpoolFull.Store(false)
	put := c.Spool.Put
	if c.PauseOnSpoolError {
		put = func(b Batch) error { return c.putRetrying(ctx, b) }
	}
	if err := put(b); err != nil {
		return err
	}
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return nil
}

// spoolRetryMax is the longest wait between two tries of a spool write
// that failed: capture notices space coming back within it.
const spoolRetryMax = time.Second

// putRetrying puts b in the spool, retrying while the spool cannot be
// written (its filesystem full or read-only). Capture pauses meanwhile:
// the source is not read further and its oplog keeps the entries, so
// nothing is lost; an upload that frees space, or space freed by hand,
// lets it go on by itself.
func (c *Capture) putRetrying(ctx context.Context, b Batch) error {
	wait := 100 * time.Millisecond
	for failed := 0; ; failed++ {
		err := c.Spool.Put(b)
		if err == nil {
			if failed > 0 {
				c.Stats.setSpoolError(nil)
				c.Log.Info("spool written again: capture goes on", "spool", c.Spool.Dir(), "failed_tries", failed)
			}
			return nil
		}
		c.Stats.setSpoolError(err)
		if failed%60 == 0 { // the first failure, then about once a minute
			c.Log.Error("cannot write the spool: capture is paused, nothing is lost while the source's oplog still holds the entries; it goes on by itself once the spool can be written",
				"spool", c.Spool.Dir(), "err", err)
		}
		select {
		case <-c.Spool.freed:
		case <-time.After(wait):
		case <-ctx.Done():
			return errStopped // the entries are read again after a restart
		}
		wait = min(wait*2, spoolRetryMax)
	}
}

// upload sends spooled batches to the sink, oldest first, retrying with
// backoff while storage fails. It returns once batching is done and the
// spool is empty, or when ctx ends.
// Upload deadlines: an upload that takes longer than uploadFloor plus its
// size at uploadMinRate is abandoned as stalled (a half-open connection to
// the storage) and retried from the spool.
const (
	uploadFloor   = 30 * time.Second
	uploadMinRate = 32 << 10 // bytes per second
)

// uploadDeadline bounds one segment's upload: c.UploadFloor (default
// uploadFloor) plus its size at uploadMinRate (a 16 MiB segment gets
// about 9 min).
func (c *Capture) uploadDeadline(b Batch) time.Duration {
	floor := c.UploadFloor
	if floor <= 0 {
		floor = uploadFloor
	}
	return floor + time.Duration(b.Bytes)*time.Second/uploadMinRate
}

func (c *Capture) upload(ctx context.Context, batchDone <-chan struct{}) error {
	backoff := 200 * time.Millisecond
	for {
		b, name, ok, err := c.Spool.Oldest()
		if err != nil {
			return err
		}
		if !ok {
			select {
			case <-batchDone:
				// Batching is over; one more look catches its final flush.
				if _, _, more, _ := c.Spool.Oldest(); !more {
					return nil
				}
				continue
			case <-c.wake:
				continue
			case <-ctx.Done():
				return nil
			}
		}
		uctx, cancel := context.WithTimeout(ctx, c.uploadDeadline(b))
		err = c.Sink.WriteSegment(uctx, b)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			c.Stats.StorageErrors.Add(1)
			c.Stats.setError(err)
			c.Log.Warn("upload segment failed; kept in the spool, retrying", "first", b.First.String(), "last", b.Last.String(), "err", err, "backoff", backoff)
			if !sleep(ctx, backoff) {
				return nil
			}
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		backoff = 200 * time.Millisecond
		c.Stats.setError(nil)
		if err := c.Spool.Remove(name); err != nil {
			// Stored: a spool that cannot be written must not stop uploads.
			c.Log.Warn("uploaded segment stays in the spool", "err", err)
		}
		c.Stats.lastDurable.Store(pack(b.Last))
		c.Stats.Segments.Add(1)
		c.Stats.BytesWritten.Add(int64(b.Bytes))
	}
}
