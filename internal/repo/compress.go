package repo

import (
	"errors"
	"fmt"
	"math/bits"
	"strings"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// zstd levels a repository writes data objects with (Config.Level, set by
// `rewind init --compression`). The level is the writer's choice alone:
// every level decodes with the same decoder, so a reader never needs it.
const (
	LevelFastest = "fastest" // zstd.SpeedFastest (about zstd -1)
	LevelDefault = "default" // zstd.SpeedDefault (about zstd -3): what repositories without a level were written with
	LevelBetter  = "better"  // zstd.SpeedBetterCompression (about zstd -7)
)

// DefaultLevel is the level `rewind init` records when none is given,
// chosen from the measurements in docs/PERFORMANCE.md ("Write and read
// pipelines"): on the workload's documents fastest writes about 1.4× more
// per CPU second than default, and stores less than both default and
// mongodump --gzip.
const DefaultLevel = LevelFastest

// Levels lists the zstd levels in the order `--compression` documents them.
var Levels = []string{LevelFastest, LevelDefault, LevelBetter}

// ParseCompression maps a `--compression` value to the Compression and
// Level of a config: "none"; "zstd" (DefaultLevel); or a level name
// ("fastest", "default", "better"), which means zstd at that level. Any
// other value is ErrInvalid, with the accepted values in the message.
func ParseCompression(s string) (compression, level string, err error) {
	switch s {
	case CompressionNone:
		return CompressionNone, "", nil
	case CompressionZstd:
		return CompressionZstd, DefaultLevel, nil
	case LevelFastest, LevelDefault, LevelBetter:
		return CompressionZstd, s, nil
	}
	return "", "", fmt.Errorf("compression %q: want one of %s, %s (zstd at %s) or %s: %w",
		s, strings.Join(Levels, ", "), CompressionZstd, DefaultLevel, CompressionNone, ErrInvalid)
}

// zstdLevel maps a config's level to the encoder's; "" is a repository
// written before the setting existed, which used SpeedDefault.
func zstdLevel(level string) (zstd.EncoderLevel, error) {
	switch level {
	case LevelFastest:
		return zstd.SpeedFastest, nil
	case LevelDefault, "":
		return zstd.SpeedDefault, nil
	case LevelBetter:
		return zstd.SpeedBetterCompression, nil
	}
	return 0, fmt.Errorf("zstd level %q: want one of %s", level, strings.Join(Levels, ", "))
}

// encoderPools hold idle encoders per level. Each encode takes one for
// itself, so as many objects compress at once as there are goroutines
// writing (one encoder per worker); a shared encoder with concurrency 1
// would let only one EncodeAll run at a time.
var encoderPools [zstd.SpeedBestCompression + 1]sync.Pool

// getEncoder returns an idle encoder at level, or a new one. Concurrency 1
// keeps it synchronous (EncodeAll only, no goroutines to leak when the
// pool drops it). The zstd frame checksum is off: the envelope already
// carries a SHA-256 of the plaintext and a CRC-32C of the stored bytes.
func getEncoder(level zstd.EncoderLevel) (*zstd.Encoder, error) {
	if level <= 0 || int(level) >= len(encoderPools) {
		level = zstd.SpeedDefault
	}
	if e, ok := encoderPools[level].Get().(*zstd.Encoder); ok {
		return e, nil
	}
	e, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderCRC(false))
	if err != nil {
		return nil, fmt.Errorf("create zstd encoder: %w", err)
	}
	return e, nil
}

func putEncoder(level zstd.EncoderLevel, e *zstd.Encoder) {
	if level <= 0 || int(level) >= len(encoderPools) {
		level = zstd.SpeedDefault
	}
	encoderPools[level].Put(e)
}

var decoderPool = sync.Pool{New: func() any {
	// Concurrency 1 keeps the decoder synchronous: no goroutines to leak
	// when a pooled decoder is dropped by the garbage collector.
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderMaxMemory(MaxObjectSize))
	if err != nil {
		return err
	}
	return d
}}

func getDecoder() (*zstd.Decoder, error) {
	switch v := decoderPool.Get().(type) {
	case *zstd.Decoder:
		return v, nil
	case error:
		return nil, fmt.Errorf("create zstd decoder: %w", v)
	}
	return nil, errors.New("create zstd decoder")
}

// bufPools hold byte slices that encoded objects and joined payloads are
// built in, so that a writer reuses the same few buffers for every object
// instead of allocating (and the collector clearing) one per object. Pool
// k holds slices of capacity at least 2^k, so a request never gets a
// slice too small for it (one mixed pool would hand an 8 MiB payload the
// 3 MiB buffer of the last envelope, and allocate anyway).
var bufPools [maxPoolClass + 1]sync.Pool

const (
	minPoolClass = 16 // 64 KiB: smaller buffers are cheap to allocate
	maxPoolClass = 26 // 64 MiB: an occasional huge object is left to the collector
)

// getBuf returns an empty slice with room for at least n bytes.
func getBuf(n int) []byte {
	k := max(bits.Len(uint(max(n, 1)-1)), minPoolClass) // the smallest k with 2^k >= n
	if k > maxPoolClass {
		return make([]byte, 0, n)
	}
	if p, ok := bufPools[k].Get().(*[]byte); ok {
		return (*p)[:0]
	}
	return make([]byte, 0, 1<<k)
}

// putBuf gives b back; the caller must not use it afterwards.
func putBuf(b []byte) {
	k := bits.Len(uint(cap(b))) - 1 // the largest k with 2^k <= cap(b)
	if k < minPoolClass || k > maxPoolClass {
		return
	}
	b = b[:0]
	bufPools[k].Put(&b)
}
