package source

import (
	"strings"
	"testing"

	"github.com/rewind-backup/rewind/internal/repo"
)

// A cluster repository takes its own shards (and shards added since), and
// refuses a shard of another cluster and a replica set; a replica set
// repository refuses a cluster.
func TestCheckShard(t *testing.T) {
	clusterRepo := repo.Config{Source: repo.Source{Flavor: "mongodb", Cluster: &repo.Cluster{
		Shards: []repo.ClusterShard{{Name: "shard01", ReplicaSet: "rsA"}, {Name: "shard02", ReplicaSet: "rsB"}}, ConfigServer: "cfgRS"}}}
	rsRepo := repo.Config{Source: repo.Source{Flavor: "mongodb", ReplicaSet: "rs0"}}
	src := func(set string) *Source { return &Source{Flavor: MongoDB, SetName: set} }
	for _, c := range []struct {
		name  string
		cfg   repo.Config
		shard string
		src   *Source
		want  string // "" accepts
	}{
		{"own shard", clusterRepo, "shard01", src("rsA"), ""},
		{"config server", clusterRepo, "config", src("cfgRS"), ""},
		{"added since", clusterRepo, "shard03", src("rsC"), ""},
		{"another cluster's shard", clusterRepo, "shard02", src("rsX"), `records it as replica set "rsB"`},
		{"another config server", clusterRepo, "config", src("cfgOther"), `records it as replica set "cfgRS"`},
		{"other flavor", clusterRepo, "shard01", &Source{Flavor: FerretDB}, "ferretdb"},
		{"replica set repository", rsRepo, "shard01", src("rsA"), "one replica set (rs0), not a sharded cluster"},
		{"repository without source", repo.Config{}, "shard01", src("rsA"), ""},
	} {
		err := c.src.CheckShard(c.cfg, c.shard)
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	if err := src("rs0").CheckRepository(clusterRepo); err == nil || !strings.Contains(err.Error(), "sharded cluster (shards shard01, shard02)") {
		t.Errorf("a replica set into a cluster repository: %v", err)
	}
}
