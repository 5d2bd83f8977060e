package storage

import (
	"context"
	"io"
	"sync/atomic"
)

// The operations Requests counts.
const (
	OpPut    = "put"
	OpGet    = "get"
	OpStat   = "stat"
	OpList   = "list"
	OpDelete = "delete"
)

// requests count every storage operation of this process, by operation.
var requests = map[string]*atomic.Uint64{OpPut: {}, OpGet: {}, OpStat: {}, OpList: {}, OpDelete: {}}

// Requests returns how many requests of each operation (OpPut...) every
// store opened by this process has made: one per call, a List however
// many pages it reads. rewind server exports them as
// rewind_storage_requests_total; object stores bill by them.
func Requests() map[string]uint64 {
	out := make(map[string]uint64, len(requests))
	for op, n := range requests {
		out[op] = n.Load()
	}
	return out
}

// counted counts the requests of the store it wraps.
type counted struct{ Store }

func (c counted) Put(ctx context.Context, key string, r io.Reader) error {
	requests[OpPut].Add(1)
	return c.Store.Put(ctx, key, r)
}

func (c counted) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	requests[OpGet].Add(1)
	return c.Store.Get(ctx, key)
}

func (c counted) Stat(ctx context.Context, key string) (Info, error) {
	requests[OpStat].Add(1)
	return c.Store.Stat(ctx, key)
}

func (c counted) List(ctx context.Context, prefix string, fn func(Info) error) error {
	requests[OpList].Add(1)
	return c.Store.List(ctx, prefix, fn)
}

func (c counted) Delete(ctx context.Context, key string) error {
	requests[OpDelete].Add(1)
	return c.Store.Delete(ctx, key)
}
