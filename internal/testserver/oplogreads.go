package testserver

import (
	"context"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
)

// CountOplogReads returns a command monitor for a client's options and the
// counter it fills (see OplogReads).
func CountOplogReads() (*event.CommandMonitor, *OplogReads) {
	c := &OplogReads{}
	return &event.CommandMonitor{Started: c.started}, c
}

// OplogReads counts the queries a client sends to local.oplog.rs that read
// the whole oplog on a server that cannot seek it by ts (FerretDB): every
// find, aggregate or count except a find of one entry with no filter and
// no sort (pushed down to SQLite as a LIMIT), a find by _id equality (an
// index lookup) and a $collStats aggregate (page statistics). A getMore
// continues a read and is not counted.
type OplogReads struct {
	mu    sync.Mutex
	scans []string // the full reads, as sent
}

func (c *OplogReads) started(_ context.Context, e *event.CommandStartedEvent) {
	if e.DatabaseName != "local" {
		return
	}
	coll, _ := e.Command.Lookup(e.CommandName).StringValueOK()
	if coll != "oplog.rs" || e.CommandName != "find" && e.CommandName != "aggregate" && e.CommandName != "count" {
		return
	}
	if e.CommandName == "aggregate" && collStatsOnly(e.Command) {
		return
	}
	filter, _ := e.Command.Lookup("filter").DocumentOK()
	sort, _ := e.Command.Lookup("sort").DocumentOK()
	limit, _ := e.Command.Lookup("limit").AsInt64OK()
	if e.CommandName == "find" && len(elements(sort)) == 0 && (byID(filter) || len(elements(filter)) == 0 && limit == 1) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.scans = append(c.scans, e.CommandName+" filter "+filter.String()+" sort "+sort.String())
}

// Scans returns the full reads counted so far, each as sent.
func (c *OplogReads) Scans() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.scans...)
}

// collStatsOnly reports whether an aggregate's pipeline is one $collStats
// stage: statistics, not a read of the entries.
func collStatsOnly(cmd bson.Raw) bool {
	p, _ := cmd.Lookup("pipeline").ArrayOK()
	stages, _ := p.Values()
	if len(stages) != 1 {
		return false
	}
	st, _ := stages[0].DocumentOK()
	els := elements(st)
	return len(els) == 1 && els[0].Key() == "$collStats"
}

// byID reports whether filter is only an _id equality to an ObjectID or a
// string, which FerretDB answers from its _id index.
func byID(filter bson.Raw) bool {
	els := elements(filter)
	if len(els) != 1 || els[0].Key() != "_id" {
		return false
	}
	t := els[0].Value().Type
	return t == bson.TypeObjectID || t == bson.TypeString
}

func elements(d bson.Raw) []bson.RawElement {
	els, _ := d.Elements()
	return els
}
