// Command ensure-testserver builds the rewind-testserver binary into the
// test cache (unless it is there already) and prints its path, so scripts and
// CI can pay the build once, before the tests run.
//
//	go run ./internal/testserver/cmd/ensure-testserver
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rewind-backup/rewind/internal/testserver"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	path, err := testserver.EnsureBinary(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ensure-testserver:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "ensure-testserver: ready in %s\n", time.Since(start).Round(time.Millisecond))
	fmt.Println(path)
}
