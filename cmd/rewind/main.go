// Command rewind is continuous backup and point-in-time restore for MongoDB.
//
// Every subcommand lives in its own file; this file only runs the root
// command and maps errors to exit codes, in one place (exitCode).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/rewind-backup/rewind/internal/repo"
)

// Exit codes, documented in the README. Scripts and service managers tell
// them apart: 2 will fail again until the input is fixed, 3 is verify's
// answer, 10 and 11 name the repository's state, 130 a stop by signal.
const (
	exitOK          = 0
	exitFailure     = 1   // the command failed; stderr says why and what to do
	exitUsage       = 2   // bad command line or config file
	exitProblems    = 3   // verify ran and found problems (or nothing restorable)
	exitNoRepo      = 10  // no rewind repository at the URL
	exitLocked      = 11  // another process holds a conflicting lock
	exitInterrupted = 130 // stopped by SIGINT or SIGTERM (128 + SIGINT, as shells do)
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command line and returns the process exit code. It is
// separate from main so tests can run the CLI in-process.
func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd := newRootCmd()
	cmd.SetArgs(args)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	err := cmd.ExecuteContext(ctx)
	code := exitCode(ctx, err)
	var pe *problemsError
	if err == nil || errors.As(err, &pe) && pe.quiet {
		return code
	}
	msg := err.Error()
	if code == exitInterrupted {
		msg = "interrupted by a signal: " + msg
	}
	printError(stderr, msg, code)
	return code
}

// printError writes the command's final error on stderr: "rewind: MSG", or
// with --log-format json (or the agent's log.format: json) one JSON object
// like every log line before it, {"level":"ERROR","msg":...,"exit_code":N},
// so that a log shipper can parse every line.
func printError(stderr io.Writer, msg string, code int) {
	if global.logFormat == "json" {
		slog.New(slog.NewJSONHandler(stderr, nil)).Error(msg, "exit_code", code)
		return
	}
	fmt.Fprintf(stderr, "rewind: %s\n", msg)
}

// exitCode maps a command's outcome to the process exit code. ctx is the
// command's context: cancelled only by SIGINT or SIGTERM. A command that
// handles the signal itself and returns nil (the agent's clean shutdown)
// exits 0.
func exitCode(ctx context.Context, err error) int {
	var ue *usageError
	var pe *problemsError
	switch {
	case err == nil:
		return exitOK
	case ctx.Err() != nil:
		return exitInterrupted
	case errors.As(err, &ue):
		return exitUsage
	case errors.As(err, &pe):
		return exitProblems
	case errors.Is(err, repo.ErrNoRepository):
		return exitNoRepo
	case errors.Is(err, repo.ErrLocked):
		return exitLocked
	}
	return exitFailure
}
