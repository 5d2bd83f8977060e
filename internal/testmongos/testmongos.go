// Package testmongos is a stand-in mongos for tests, since no mongos can run
// on the machines the tests run on. It listens on a local port and forwards
// every wire-protocol message to one real test server, with two changes: it
// answers hello as a mongos does (msg "isdbgrid", no replica set fields),
// and it answers the sharding commands itself (listShards, enableSharding,
// shardCollection, updateZoneKeyRange, addShardToZone), recording each,
// since the test server has none of them. Reads and writes reach the real
// server unchanged, so what a restore through it writes is real data. It is
// test harness, never product code: the routing it answers is static.
package testmongos

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/wiremessage"
)

// Router is a running stand-in mongos.
type Router struct {
	ln       net.Listener
	upstream string
	shards   map[string][]string // shard name → its zones, as listShards answers

	mu  sync.Mutex
	log []Command
}

// Command is one command the router saw, in order: the sharding commands
// it answered, and the names and namespaces of those it forwarded.
type Command struct {
	Name      string   // the command's name: "enableSharding", "create", "insert", ...
	Target    string   // its first field's value when a string: a database, namespace or collection
	DB        string   // the $db it ran on
	Body      bson.Raw // the whole command, for the sharding commands it answered
	Forwarded bool
}

// sharding are the commands the router answers itself.
var sharding = map[string]bool{"listShards": true, "enableSharding": true, "shardCollection": true,
	"updateZoneKeyRange": true, "addShardToZone": true}

// Start starts a router in front of the test server at upstream
// ("host:port"), whose cluster has the given shards (name → zones). It stops
// when the test ends.
func Start(t testing.TB, upstream string, shards map[string][]string) *Router {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testmongos: listen: %v", err)
	}
	r := &Router{ln: ln, upstream: upstream, shards: shards}
	go r.accept()
	t.Cleanup(func() { _ = ln.Close() })
	return r
}

// URI is the router's connection string.
func (r *Router) URI() string { return "mongodb://" + r.ln.Addr().String() + "/?directConnection=true" }

// Commands lists the commands seen so far, in order.
func (r *Router) Commands() []Command {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.log)
}

func (r *Router) accept() {
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		go r.serve(c)
	}
}

// serve relays one client connection over its own upstream connection.
func (r *Router) serve(client net.Conn) {
	defer client.Close()
	up, err := net.Dial("tcp", r.upstream)
	if err != nil {
		return
	}
	defer up.Close()
	for {
		req, err := readMessage(client)
		if err != nil {
			return
		}
		reply, err := r.handle(req, up)
		if err != nil {
			return
		}
		if reply == nil {
			continue
		}
		if _, err := client.Write(reply); err != nil {
			return
		}
	}
}

// handle answers one request: itself for a sharding command, else by the
// upstream server's reply (hello's rewritten as a mongos's).
func (r *Router) handle(req []byte, up net.Conn) ([]byte, error) {
	_, reqID, _, op, body, _ := wiremessage.ReadHeader(req)
	cmd, ok := command(op, body)
	name := ""
	if ok {
		if els, err := cmd.Elements(); err == nil && len(els) > 0 {
			name = els[0].Key()
		}
	}
	if sharding[name] {
		r.record(name, cmd, false)
		return opMsg(reqID, r.answer(name)), nil
	}
	if name != "" {
		r.record(name, cmd, true)
	}
	if _, err := up.Write(req); err != nil {
		return nil, err
	}
	if op == wiremessage.OpMsg && wiremessage.IsMsgMoreToCome(req) {
		return nil, nil // an unacknowledged write: no reply comes
	}
	reply, err := readMessage(up)
	if err != nil || !isHello(name) {
		return reply, err
	}
	return asMongos(reply), nil
}

func (r *Router) record(name string, cmd bson.Raw, forwarded bool) {
	c := Command{Name: name, Forwarded: forwarded}
	c.Target, _ = cmd.Lookup(name).StringValueOK()
	c.DB, _ = cmd.Lookup("$db").StringValueOK()
	if !forwarded {
		c.Body = slices.Clone(cmd)
	}
	r.mu.Lock()
	r.log = append(r.log, c)
	r.mu.Unlock()
}

// answer is the router's reply to a sharding command: the static shard list
// for listShards, ok for the others.
func (r *Router) answer(name string) bson.D {
	if name != "listShards" {
		return bson.D{{Key: "ok", Value: 1.0}}
	}
	var shards bson.A
	for _, n := range slices.Sorted(func(yield func(string) bool) {
		for n := range r.shards {
			if !yield(n) {
				return
			}
		}
	}) {
		zones := r.shards[n]
		if zones == nil {
			zones = []string{}
		}
		shards = append(shards, bson.D{{Key: "_id", Value: n}, {Key: "host", Value: n + "/" + r.upstream}, {Key: "state", Value: 1}, {Key: "tags", Value: zones}})
	}
	return bson.D{{Key: "shards", Value: shards}, {Key: "ok", Value: 1.0}}
}

func isHello(name string) bool {
	return name == "hello" || strings.EqualFold(name, "isMaster")
}

// command is the request's command document (the OP_MSG body section).
// The driver speaks OP_MSG only, its handshake included: a legacy OP_QUERY
// is forwarded untouched.
func command(op wiremessage.OpCode, body []byte) (bson.Raw, bool) {
	switch op {
	case wiremessage.OpMsg:
		_, rem, ok := wiremessage.ReadMsgFlags(body)
		for ok && len(rem) > 0 {
			var st wiremessage.SectionType
			if st, rem, ok = wiremessage.ReadMsgSectionType(rem); !ok {
				break
			}
			if st == wiremessage.SingleDocument {
				doc, _, ok := wiremessage.ReadMsgSectionSingleDocument(rem)
				return bson.Raw(doc), ok
			}
			_, _, rem, ok = wiremessage.ReadMsgSectionRawDocumentSequence(rem)
		}
	}
	return nil, false
}

// notMongos are hello fields a mongos does not send: with them the driver
// would take the server for a replica set member. topologyVersion goes too,
// so the driver polls hello instead of streaming it (exhaust).
var notMongos = map[string]bool{"setName": true, "setVersion": true, "hosts": true, "primary": true, "me": true,
	"secondary": true, "electionId": true, "lastWrite": true, "topologyVersion": true, "msg": true, "compression": true}

// asMongos rewrites a hello reply as a mongos's.
func asMongos(reply []byte) []byte {
	_, _, respTo, op, body, _ := wiremessage.ReadHeader(reply)
	if op != wiremessage.OpMsg {
		return reply
	}
	_, rem, _ := wiremessage.ReadMsgFlags(body)
	_, rem, _ = wiremessage.ReadMsgSectionType(rem)
	doc, _, _ := wiremessage.ReadMsgSectionSingleDocument(rem)
	out := bson.D{}
	els, _ := bson.Raw(doc).Elements()
	for _, e := range els {
		if !notMongos[e.Key()] {
			out = append(out, bson.E{Key: e.Key(), Value: e.Value()})
		}
	}
	out = append(out, bson.E{Key: "msg", Value: "isdbgrid"})
	return opMsg(respTo, out)
}

func opMsg(respTo int32, doc bson.D) []byte {
	b, _ := bson.Marshal(doc)
	idx, msg := wiremessage.AppendHeaderStart(nil, wiremessage.NextRequestID(), respTo, wiremessage.OpMsg)
	msg = wiremessage.AppendMsgFlags(msg, 0)
	msg = wiremessage.AppendMsgSectionType(msg, wiremessage.SingleDocument)
	msg = append(msg, b...)
	return bsoncore.UpdateLength(msg, idx, int32(len(msg[idx:])))
}

// readMessage reads one whole wire-protocol message.
func readMessage(c net.Conn) ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		return nil, err
	}
	n := int32(binary.LittleEndian.Uint32(size[:]))
	if n < 16 || n > 48<<20 {
		return nil, errors.New("testmongos: bad message length")
	}
	msg := make([]byte, n)
	copy(msg, size[:])
	_, err := io.ReadFull(c, msg[4:])
	return msg, err
}
