package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// progressSource is the live count of a long job (snapshot.Progress,
// restore.Progress): the packages count, the CLI shows.
type progressSource interface {
	Started() bool
	Line() string
	Log(log *slog.Logger)
}

// withProgress runs job while showing p on stderr: a line rewritten in
// place every half second on a terminal, a log line every 10 s otherwise.
func withProgress(cmd *cobra.Command, p progressSource, log *slog.Logger, job func() error) error {
	ctx, stop := context.WithCancel(cmd.Context())
	done := make(chan struct{})
	w := cmd.ErrOrStderr()
	tty := isTerminal(w)
	go func() {
		defer close(done)
		showProgress(ctx, w, tty, log, p)
	}()
	err := job()
	stop()
	<-done
	return err
}

func showProgress(ctx context.Context, w io.Writer, tty bool, log *slog.Logger, p progressSource) {
	every := 10 * time.Second
	if tty {
		every = 500 * time.Millisecond
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if tty && p.Started() {
				fmt.Fprintf(w, "\r\033[K%s\n", p.Line())
			}
			return
		case <-t.C:
		}
		switch {
		case !p.Started():
		case tty:
			fmt.Fprintf(w, "\r\033[K%s", p.Line())
		default:
			p.Log(log)
		}
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
