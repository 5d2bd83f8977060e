package workload

import (
	"math"
	"math/rand/v2"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Kind is one kind of BSON value (or value shape) the generator can write.
type Kind uint

// The kinds of values. Some servers refuse some of them (FerretDB: see
// testserver.Quirks), so a Config names the set to use.
const (
	Double Kind = iota
	String
	Document
	Array
	Binary
	ObjectID
	Bool
	DateTime
	Null
	Regex
	Int32
	Timestamp
	Int64
	Decimal128
	MinMaxKey
	JavaScript
	Symbol
	Undefined
	DBPointer
	NaNInf      // NaN and ±Infinity doubles
	NegZero     // -0.0, which some servers store as +0.0
	NestedArray // an array directly or indirectly inside an array
	RegexX      // the regex option "x" (extended), which FerretDB cannot compile to compare
	numKinds
)

var kindNames = [...]string{"double", "string", "document", "array", "binary", "objectid",
	"bool", "date", "null", "regex", "int32", "timestamp", "int64", "decimal128",
	"minmaxkey", "javascript", "symbol", "undefined", "dbpointer", "naninf", "negzero", "nestedarray", "regexx"}

func (k Kind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return "kind?"
}

// Kinds is a set of Kind.
type Kinds uint64

// AllKinds is every kind: what a MongoDB server accepts.
var AllKinds = Kinds(1<<numKinds - 1)

// Has reports whether k is in the set.
func (ks Kinds) Has(k Kind) bool { return ks&(1<<k) != 0 }

// Without returns the set minus the given kinds.
func (ks Kinds) Without(k ...Kind) Kinds {
	for _, x := range k {
		ks &^= 1 << x
	}
	return ks
}

// String lists the kinds in the set.
func (ks Kinds) String() string {
	var names []string
	for k := Kind(0); k < numKinds; k++ {
		if ks.Has(k) {
			names = append(names, k.String())
		}
	}
	return strings.Join(names, ",")
}

// scalar kinds: those that are not containers or shape flags.
var scalarKinds = []Kind{Double, String, Binary, ObjectID, Bool, DateTime, Null, Regex,
	Int32, Timestamp, Int64, Decimal128, MinMaxKey, JavaScript, Symbol, Undefined, DBPointer}

// fieldNames are the names random fields take: unicode, spaces and
// punctuation, but no dots or leading "$" (refused by FerretDB, and ambiguous
// in update paths everywhere).
var fieldNames = []string{"f0", "f1", "f2", "f3", "f4", "f5", "f6", "f7",
	"ключ", "名前", "with space", "emoji😀", "Ünïcödé", "x-y_z", "CamelCase", "q"}

// strings mixes plain, unicode (several scripts, combining marks, emoji, right
// to left) and control characters.
var stringPieces = []string{"hello", "wörld", "日本語", "한국어", "العربية", "עברית",
	"e\u0301", "😀👍🏽", "tab\there", "new\nline", "quote\"s", "back\\slash", "nul?", " ", ""}

var regexPatterns = []string{"^abc", "a.*b$", "[0-9]+", "(?:x|y){2,3}", "\\d{4}-\\d{2}", "ünï", "^$"}
var regexOptions = []string{"", "i", "im", "ims", "s", "imsx", "x"}

var binarySubtypes = []byte{0x00, 0x01, 0x03, 0x04, 0x05, 0x07, 0x80}

// gen draws values from one seeded source, so the same seed gives the same
// values.
type gen struct {
	rng   *rand.Rand
	kinds Kinds
}

func (g *gen) pick(n int) int { return g.rng.IntN(n) }

func (g *gen) str(maxPieces int) string {
	var b strings.Builder
	for i, n := 0, g.pick(maxPieces)+1; i < n; i++ {
		b.WriteString(stringPieces[g.pick(len(stringPieces))])
	}
	return b.String()
}

// value returns a random value of an enabled kind; depth bounds nesting and
// inArray keeps arrays out of arrays when NestedArray is off.
func (g *gen) value(depth int, inArray bool) any {
	choices := make([]Kind, 0, len(scalarKinds)+2)
	for _, k := range scalarKinds {
		if g.kinds.Has(k) {
			choices = append(choices, k)
		}
	}
	if depth > 0 && g.kinds.Has(Document) {
		choices = append(choices, Document)
	}
	if depth > 0 && g.kinds.Has(Array) && (!inArray || g.kinds.Has(NestedArray)) {
		choices = append(choices, Array)
	}
	if len(choices) == 0 {
		return int64(g.pick(1000))
	}
	return g.valueOf(choices[g.pick(len(choices))], depth, inArray)
}

func (g *gen) valueOf(k Kind, depth int, inArray bool) any {
	switch k {
	case Double:
		return g.double()
	case String:
		if g.pick(50) == 0 {
			return strings.Repeat(g.str(3), 200+g.pick(2000)) // long strings
		}
		return g.str(4)
	case Document:
		return g.doc(depth-1, inArray, 4)
	case Array:
		arr := make(bson.A, g.pick(5))
		for i := range arr {
			arr[i] = g.value(depth-1, true)
		}
		return arr
	case Binary:
		return g.binary()
	case ObjectID:
		var id bson.ObjectID
		for i := range id {
			id[i] = byte(g.rng.UintN(256))
		}
		return id
	case Bool:
		return g.pick(2) == 0
	case DateTime:
		// 1900..2200, in milliseconds, including dates before the epoch.
		return bson.DateTime(g.rng.Int64N(9_466_848_000_000) - 2_208_988_800_000)
	case Null:
		return bson.Null{}
	case Regex:
		opts := regexOptions[:len(regexOptions)-2] // the last two have "x"
		if g.kinds.Has(RegexX) {
			opts = regexOptions
		}
		return bson.Regex{Pattern: regexPatterns[g.pick(len(regexPatterns))], Options: opts[g.pick(len(opts))]}
	case Int32:
		return int32(g.rng.Uint32())
	case Timestamp:
		// Never {0, 0}: MongoDB replaces that with the current time on insert.
		return bson.Timestamp{T: 1 + g.rng.Uint32N(2_000_000_000), I: g.rng.Uint32N(1000)}
	case Int64:
		return int64(g.rng.Uint64())
	default:
		return g.exotic(k)
	}
}

// exotic returns the kinds only MongoDB itself accepts.
func (g *gen) exotic(k Kind) any {
	switch k {
	case Decimal128:
		return bson.NewDecimal128(0x3040000000000000, g.rng.Uint64N(1e15)) // an integer-valued decimal
	case MinMaxKey:
		if g.pick(2) == 0 {
			return bson.MinKey{}
		}
		return bson.MaxKey{}
	case JavaScript:
		return bson.JavaScript("function() { return " + g.str(1) + "; }")
	case Symbol:
		return bson.Symbol(g.str(2))
	case Undefined:
		return bson.Undefined{}
	case DBPointer:
		var id bson.ObjectID
		id[11] = byte(g.pick(256))
		return bson.DBPointer{DB: "db.coll", Pointer: id}
	}
	return bson.Null{}
}

func (g *gen) double() float64 {
	switch n := g.pick(20); {
	case n == 0 && g.kinds.Has(NaNInf):
		return []float64{math.NaN(), math.Inf(1), math.Inf(-1)}[g.pick(3)]
	case n == 1 && g.kinds.Has(NegZero):
		return math.Copysign(0, -1)
	case n == 2:
		return math.SmallestNonzeroFloat64
	case n == 3:
		return math.MaxFloat64
	}
	f := (g.rng.Float64() - 0.5) * math.Pow(10, float64(g.pick(30)-10))
	if f == 0 {
		return 1 // -0.0 may come out of the product; keep it behind NegZero
	}
	return f
}

func (g *gen) binary() bson.Binary {
	sub := binarySubtypes[g.pick(len(binarySubtypes))]
	n := g.pick(64)
	if sub == 0x03 || sub == 0x04 || sub == 0x05 {
		n = 16 // UUIDs and MD5 have a fixed length
	}
	data := make([]byte, n)
	for i := range data {
		data[i] = byte(g.rng.UintN(256))
	}
	return bson.Binary{Subtype: sub, Data: data}
}

// doc returns a document of up to maxFields fields with distinct names.
func (g *gen) doc(depth int, inArray bool, maxFields int) bson.D {
	names := g.fieldSubset(g.pick(maxFields + 1))
	d := make(bson.D, 0, len(names))
	for _, name := range names {
		d = append(d, bson.E{Key: name, Value: g.value(depth, inArray)})
	}
	return d
}

// fieldSubset picks n distinct field names.
func (g *gen) fieldSubset(n int) []string {
	perm := g.rng.Perm(len(fieldNames))
	names := make([]string, 0, n)
	for _, i := range perm[:min(n, len(perm))] {
		names = append(names, fieldNames[i])
	}
	return names
}
