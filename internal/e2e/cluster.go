package e2e

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cluster is a Redis Cluster of three masters without replicas, started for
// a test on 127.0.0.1: each node on a free port with its cluster bus on
// another free port, without persistence, in a directory of its own. Every
// process is killed when the test ends.
type Cluster struct {
	tb    testing.TB
	nodes [3]*node
	bus   [3]int
}

// clusterSlots is the number of hash slots of a Redis Cluster.
const clusterSlots = 16384

// StartCluster starts the nodes, gives each a third of the hash slots, joins
// them with CLUSTER MEET, and returns once every node reports
// cluster_state:ok and knows the three. Without redis-server it skips tb,
// or fails it when CI is set.
func StartCluster(tb testing.TB) *Cluster {
	tb.Helper()
	bin := needBinary(tb, "redis-server", "redis-server")
	c := &Cluster{tb: tb}
	for i := range c.nodes {
		n := &node{port: FreePort(tb), dir: tb.TempDir()}
		c.nodes[i] = n
		// The bus port defaults to port+10000, which may be taken or out
		// of range; a free port of its own avoids both.
		c.bus[i] = FreePort(tb)
		tb.Cleanup(n.stop)
		n.set(startRedisProc(tb, bin, dataArgs(n,
			"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf",
			"--cluster-port", strconv.Itoa(c.bus[i]),
			"--cluster-node-timeout", "5000"),
			"Ready to accept connections"))
	}
	clients := make([]*redis.Client, len(c.nodes))
	for i, n := range c.nodes {
		clients[i] = redis.NewClient(&redis.Options{Addr: n.addr(), DialTimeout: time.Second, ReadTimeout: 2 * time.Second})
		defer clients[i].Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), topologyTimeout)
	defer cancel()
	per := clusterSlots / len(c.nodes)
	for i, cl := range clients {
		first, last := i*per, (i+1)*per-1
		if i == len(clients)-1 {
			last = clusterSlots - 1
		}
		if err := cl.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", first, last).Err(); err != nil {
			tb.Fatalf("CLUSTER ADDSLOTSRANGE on node %d: %v", i, err)
		}
	}
	for i := 1; i < len(c.nodes); i++ {
		if err := clients[0].Do(ctx, "CLUSTER", "MEET", "127.0.0.1", c.nodes[i].port, c.bus[i]).Err(); err != nil {
			tb.Fatalf("CLUSTER MEET node %d: %v", i, err)
		}
	}
	poll(tb, topologyTimeout, "cluster_state:ok on every node", func(ctx context.Context) error {
		for i, cl := range clients {
			info, err := cl.ClusterInfo(ctx).Result()
			if err != nil {
				return err
			}
			for _, want := range []string{"cluster_state:ok", "cluster_known_nodes:3", "cluster_slots_ok:16384", "cluster_size:3"} {
				if !strings.Contains(info, want) {
					return fmt.Errorf("node %d: no %s in\n%s", i, want, info)
				}
			}
		}
		return nil
	})
	return c
}

// URL is the store URL of the cluster: its three nodes.
func (c *Cluster) URL() string {
	return "redis://" + strings.Join(c.Addrs(), ",")
}

// Addrs are the nodes' host:port.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		addrs[i] = n.addr()
	}
	return addrs
}
