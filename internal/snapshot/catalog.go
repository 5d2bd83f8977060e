package snapshot

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/rewind-backup/rewind/internal/repo"
)

// collInfo is one collection to copy, as listed before the copy starts.
type collInfo struct {
	db, name string
	id       string // collection id in chunk keys
	options  bson.Raw
	indexes  []bson.Raw
	// estDocs and estBytes are the server's estimates, for progress and
	// for deciding whether to split.
	estDocs, estBytes int64
}

// catalog is everything listed before the copy: what to copy and the
// metadata a restore needs.
type catalog struct {
	colls []*collInfo
	views []repo.ViewManifest
	users []bson.Raw
	roles []bson.Raw
}

// listCatalog lists the selected databases' collections, views, indexes,
// users and roles. Permission problems surface here, before any copying.
func listCatalog(ctx context.Context, client *mongo.Client, f Filter) (*catalog, error) {
	dbs, err := client.ListDatabaseNames(ctx, bson.D{})
	if err != nil {
		return nil, fmt.Errorf("list databases: %w", explain(err))
	}
	slices.Sort(dbs)
	cat := &catalog{}
	for _, name := range dbs {
		if systemDBs[name] || !f.MatchDB(name) {
			continue
		}
		db := client.Database(name)
		n := len(cat.colls) + len(cat.views)
		if err := cat.listDB(ctx, db, f); err != nil {
			return nil, err
		}
		if len(cat.colls)+len(cat.views) == n {
			continue
		}
		if err := cat.listSecurity(ctx, db); err != nil {
			return nil, err
		}
	}
	return cat, nil
}

func (cat *catalog) listDB(ctx context.Context, db *mongo.Database, f Filter) error {
	cur, err := db.ListCollections(ctx, bson.D{})
	if err != nil {
		return fmt.Errorf("list collections of %s: %w", db.Name(), explain(err))
	}
	var listed []bson.Raw
	for cur.Next(ctx) {
		listed = append(listed, slices.Clone(cur.Current))
	}
	if err := cur.Err(); err != nil {
		return fmt.Errorf("list collections of %s: %w", db.Name(), explain(err))
	}
	_ = cur.Close(ctx)
	for _, spec := range listed {
		name, _ := spec.Lookup("name").StringValueOK()
		typ, _ := spec.Lookup("type").StringValueOK()
		opts, _ := spec.Lookup("options").DocumentOK()
		if !userCollection(name) || !f.Match(db.Name(), name) {
			continue
		}
		if typ == "view" {
			cat.views = append(cat.views, repo.ViewManifest{DB: db.Name(), Name: name, Options: opts})
			continue
		}
		c := &collInfo{db: db.Name(), name: name, id: collectionID(spec), options: opts}
		if err := c.listIndexes(ctx, db.Collection(name)); err != nil {
			return err
		}
		c.estimate(ctx, db)
		cat.colls = append(cat.colls, c)
	}
	return nil
}

// collectionID is the server's collection UUID in hex, or a random id when
// the server has none (FerretDB): never the name, which may hold anything.
func collectionID(spec bson.Raw) string {
	if v, err := spec.LookupErr("info", "uuid"); err == nil {
		if _, data, ok := v.BinaryOK(); ok && len(data) > 0 {
			return hex.EncodeToString(data)
		}
	}
	return "r" + randomHex(8)
}

func (c *collInfo) listIndexes(ctx context.Context, coll *mongo.Collection) error {
	cur, err := coll.Indexes().List(ctx)
	if err != nil {
		return fmt.Errorf("list indexes of %s.%s: %w", c.db, c.name, explain(err))
	}
	defer cur.Close(ctx)
	for cur.Next(ctx) {
		c.indexes = append(c.indexes, slices.Clone(cur.Current))
	}
	if err := cur.Err(); err != nil {
		return fmt.Errorf("list indexes of %s.%s: %w", c.db, c.name, explain(err))
	}
	return nil
}

// estimate asks collStats for the size; a server without it leaves the
// estimates at zero (progress then shows no ETA).
func (c *collInfo) estimate(ctx context.Context, db *mongo.Database) {
	var st bson.Raw
	if err := db.RunCommand(ctx, bson.D{{Key: "collStats", Value: c.name}}).Decode(&st); err != nil {
		return
	}
	c.estDocs = number(st.Lookup("count"))
	c.estBytes = number(st.Lookup("size"))
}

func number(v bson.RawValue) int64 {
	if n, ok := v.AsInt64OK(); ok {
		return n
	}
	if f, ok := v.DoubleOK(); ok {
		return int64(f)
	}
	return 0
}

// listSecurity records the users and roles defined on db. A server without
// the commands records none; a user not allowed to see credentials records
// them without.
func (cat *catalog) listSecurity(ctx context.Context, db *mongo.Database) error {
	users, err := securityInfo(ctx, db, "usersInfo", "users", bson.E{Key: "showCredentials", Value: true})
	if err != nil {
		return err
	}
	roles, err := securityInfo(ctx, db, "rolesInfo", "roles", bson.E{Key: "showPrivileges", Value: true})
	if err != nil {
		return err
	}
	cat.users = append(cat.users, users...)
	cat.roles = append(cat.roles, roles...)
	return nil
}

func securityInfo(ctx context.Context, db *mongo.Database, cmd, field string, show bson.E) ([]bson.Raw, error) {
	var res bson.Raw
	err := db.RunCommand(ctx, bson.D{{Key: cmd, Value: 1}, show}).Decode(&res)
	if unauthorized(err) {
		err = db.RunCommand(ctx, bson.D{{Key: cmd, Value: 1}}).Decode(&res)
	}
	switch {
	case notSupported(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("run %s on %s: %w", cmd, db.Name(), explain(err))
	}
	arr, ok := res.Lookup(field).ArrayOK()
	if !ok {
		return nil, nil
	}
	vals, err := arr.Values()
	if err != nil {
		return nil, fmt.Errorf("read %s answer of %s: %w", cmd, db.Name(), err)
	}
	var out []bson.Raw
	for _, v := range vals {
		if d, ok := v.DocumentOK(); ok {
			out = append(out, slices.Clone(d))
		}
	}
	return out, nil
}

// Server error codes this package tells apart.
const (
	codeUnauthorized    = 13
	codeCommandNotFound = 59
	codeNotImplemented  = 238
)

func serverCode(err error) int {
	var ce mongo.CommandError
	if errors.As(err, &ce) {
		return int(ce.Code)
	}
	var se mongo.ServerError
	if errors.As(err, &se) {
		for _, c := range []int{codeUnauthorized, codeCommandNotFound, codeNotImplemented} {
			if se.HasErrorCode(c) {
				return c
			}
		}
	}
	return 0
}

func unauthorized(err error) bool {
	return err != nil && (serverCode(err) == codeUnauthorized || strings.Contains(err.Error(), "not authorized"))
}

func notSupported(err error) bool {
	if err == nil {
		return false
	}
	c := serverCode(err)
	msg := strings.ToLower(err.Error())
	return c == codeCommandNotFound || c == codeNotImplemented ||
		strings.Contains(msg, "no such command") || strings.Contains(msg, "not implemented")
}

// explain turns a permission error into advice.
func explain(err error) error {
	if unauthorized(err) {
		return fmt.Errorf("%w: the user lacks a permission a snapshot needs; grant it the backup role (read on every database, plus viewUser and viewRole)", err)
	}
	return err
}
