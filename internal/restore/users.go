package restore

import (
	"context"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

var replaceUpsert = options.Replace().SetUpsert(true)

// restoreUsersAndRoles writes the snapshot's users and roles (when asked) the
// way mongorestore does: as documents of admin.system.users and
// admin.system.roles, replaced by _id, so credentials survive as they were.
func restoreUsersAndRoles(ctx context.Context, client *mongo.Client, p Plan) (users, roles int, err error) {
	admin := client.Database("admin")
	for _, set := range []struct {
		coll string
		docs []bson.Raw
		n    *int
	}{{"system.roles", p.Roles, &roles}, {"system.users", p.Users, &users}} {
		for _, d := range set.docs {
			id := d.Lookup("_id")
			if id.Type == 0 {
				name, _ := d.Lookup("user").StringValueOK()
				if name == "" {
					name, _ = d.Lookup("role").StringValueOK()
				}
				db, _ := d.Lookup("db").StringValueOK()
				id = bson.RawValue{Type: bson.TypeString, Value: bsonString(db + "." + name)}
			}
			_, err := admin.Collection(set.coll).ReplaceOne(ctx, bson.D{{Key: "_id", Value: id}}, stored(d),
				replaceUpsert)
			if err != nil {
				return users, roles, fmt.Errorf("restore %s %s: %w", strings.TrimPrefix(set.coll, "system."), id, err)
			}
			*set.n++
		}
	}
	return users, roles, nil
}

// derived are fields usersInfo and rolesInfo compute (the server stores
// none of them).
var derived = map[string]bool{"mechanisms": true, "isBuiltin": true, "inheritedRoles": true,
	"inheritedPrivileges": true, "inheritedAuthenticationRestrictions": true}

// stored turns a usersInfo or rolesInfo answer back into the document the
// server keeps.
func stored(d bson.Raw) bson.D {
	var out bson.D
	els, _ := d.Elements()
	for _, e := range els {
		if !derived[e.Key()] {
			out = append(out, bson.E{Key: e.Key(), Value: e.Value()})
		}
	}
	return out
}

// bsonString encodes s as a BSON string value.
func bsonString(s string) []byte {
	_, v, _ := bson.MarshalValue(s)
	return v
}
