package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// newDropCmd drops databases by prefix: the "disaster" of the demo, so a
// person can see a restore bring them back.
func newDropCmd() *cobra.Command {
	var uri, prefix string
	cmd := &cobra.Command{
		Use:   "drop --uri URI --prefix PREFIX",
		Short: "Drop every database whose name starts with PREFIX (to simulate a disaster)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if prefix == "" {
				return usagef("--prefix is required (an empty prefix would drop everything)")
			}
			client, err := connect(cmd.Context(), uri)
			if err != nil {
				return err
			}
			defer client.Disconnect(cmd.Context())
			names, err := client.ListDatabaseNames(cmd.Context(), bson.D{})
			if err != nil {
				return fmt.Errorf("list databases: %w", err)
			}
			n := 0
			for _, name := range names {
				if strings.HasPrefix(name, prefix) {
					if err := client.Database(name).Drop(cmd.Context()); err != nil {
						return fmt.Errorf("drop %s: %w", name, err)
					}
					n++
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "dropped %d databases starting with %q\n", n, prefix)
			return nil
		},
	}
	cmd.Flags().StringVar(&uri, "uri", "", "connection string (required)")
	cmd.Flags().StringVar(&prefix, "prefix", "", "database name prefix (required)")
	return cmd
}
