package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// SentinelMaster is the name under which the Sentinels of StartSentinel
// monitor their master.
const SentinelMaster = "idv"

// sentinelDownAfter is how long a master must be silent before a Sentinel
// believes it down. Production setups use 5–30 s; a second keeps the
// failover tests short while leaving loopback latency far below it.
const sentinelDownAfter = time.Second

// topologyTimeout bounds how long a Sentinel group or a Cluster may take to
// settle (Sentinels discover each other through hello messages every 2 s).
const topologyTimeout = 60 * time.Second

// Sentinel is a Redis Sentinel group started for a test on 127.0.0.1: one
// master, one replica of it and three Sentinels with a quorum of two, each
// on a free port, without persistence, in directories of their own. Every
// process is killed when the test ends.
type Sentinel struct {
	tb        testing.TB
	serverBin string
	// data are the two data nodes; which one is the master changes with
	// a failover.
	data      [2]*node
	sentinels [3]*node
	clients   [3]*redis.SentinelClient
}

// node is one Redis process of a topology and the port it listens on.
type node struct {
	port int
	dir  string

	mu   sync.Mutex
	proc *redisProc
}

func (n *node) addr() string { return "127.0.0.1:" + strconv.Itoa(n.port) }

// stop kills the process if it runs.
func (n *node) stop() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.proc != nil {
		n.proc.kill()
		n.proc = nil
	}
}

func (n *node) set(p *redisProc) {
	n.mu.Lock()
	n.proc = p
	n.mu.Unlock()
}

// dataArgs are the redis-server arguments of a node without persistence.
func dataArgs(n *node, extra ...string) []string {
	return append([]string{"--save", "", "--appendonly", "no",
		"--port", strconv.Itoa(n.port), "--bind", "127.0.0.1", "--dir", n.dir}, extra...)
}

// StartSentinel starts a Sentinel group for tb and returns once every
// Sentinel knows the master, the replica and the two other Sentinels, so
// that a failover can start at once. Without redis-server or
// redis-sentinel it skips tb, or fails it when CI is set.
func StartSentinel(tb testing.TB) *Sentinel {
	tb.Helper()
	s := &Sentinel{
		tb:        tb,
		serverBin: needBinary(tb, "redis-server", "redis-server"),
	}
	sentinelBin := needBinary(tb, "redis-sentinel", "redis-sentinel")
	for i := range s.data {
		s.data[i] = &node{port: FreePort(tb), dir: tb.TempDir()}
		tb.Cleanup(s.data[i].stop)
	}
	for i := range s.sentinels {
		s.sentinels[i] = &node{port: FreePort(tb), dir: tb.TempDir()}
		tb.Cleanup(s.sentinels[i].stop)
	}
	master, replica := s.data[0], s.data[1]
	master.set(startRedisProc(tb, s.serverBin, dataArgs(master), "Ready to accept connections"))
	// Sentinels learn of replicas from the master's INFO, which they read
	// at once when they start and then every 10 s: starting them after the
	// replica has synchronised saves those 10 s.
	replica.set(startRedisProc(tb, s.serverBin, dataArgs(replica, "--replicaof", "127.0.0.1", strconv.Itoa(master.port)),
		"MASTER <-> REPLICA sync: Finished with success"))
	for _, sn := range s.sentinels {
		conf := filepath.Join(sn.dir, "sentinel.conf")
		text := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %q\n", sn.port, sn.dir) +
			fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d 2\n", SentinelMaster, master.port) +
			fmt.Sprintf("sentinel down-after-milliseconds %s %d\n", SentinelMaster, sentinelDownAfter.Milliseconds()) +
			fmt.Sprintf("sentinel failover-timeout %s 10000\n", SentinelMaster) +
			fmt.Sprintf("sentinel parallel-syncs %s 1\n", SentinelMaster)
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			tb.Fatal(err)
		}
		sn.set(startRedisProc(tb, sentinelBin, []string{conf}, "+monitor master"))
	}
	for i, sn := range s.sentinels {
		c := redis.NewSentinelClient(&redis.Options{Addr: sn.addr(), DialTimeout: time.Second, ReadTimeout: time.Second})
		tb.Cleanup(func() { c.Close() })
		s.clients[i] = c
	}
	s.waitSettled()
	return s
}

// URL is the store URL of the group: the three Sentinels and the master's
// name.
func (s *Sentinel) URL() string {
	addrs := make([]string, len(s.sentinels))
	for i, sn := range s.sentinels {
		addrs[i] = sn.addr()
	}
	return "redis://" + strings.Join(addrs, ",") + "/0?master_name=" + SentinelMaster
}

// waitSettled waits until every Sentinel sees the master, one healthy
// replica and two other Sentinels.
func (s *Sentinel) waitSettled() {
	s.tb.Helper()
	poll(s.tb, topologyTimeout, "the Sentinel group to settle", func(ctx context.Context) error {
		for i, c := range s.clients {
			m, err := c.Master(ctx, SentinelMaster).Result()
			if err != nil {
				return err
			}
			if m["num-other-sentinels"] != "2" || m["num-slaves"] != "1" || m["flags"] != "master" {
				return fmt.Errorf("sentinel %d: flags %s, %s other sentinels, %s replicas", i, m["flags"], m["num-other-sentinels"], m["num-slaves"])
			}
			reps, err := c.Replicas(ctx, SentinelMaster).Result()
			if err != nil {
				return err
			}
			if len(reps) != 1 || reps[0]["flags"] != "slave" || reps[0]["master-link-status"] != "ok" {
				return fmt.Errorf("sentinel %d: replica not ready: %v", i, reps)
			}
		}
		return nil
	})
}

// MasterAddr is the master's address as the first Sentinel that answers
// names it.
func (s *Sentinel) MasterAddr() string {
	s.tb.Helper()
	var addr string
	poll(s.tb, topologyTimeout, "a Sentinel to name the master", func(ctx context.Context) error {
		for i := range s.sentinels {
			a, err := s.clients[i].GetMasterAddrByName(ctx, SentinelMaster).Result()
			if err == nil && len(a) == 2 {
				addr = a[0] + ":" + a[1]
				return nil
			}
		}
		return fmt.Errorf("no Sentinel names the master")
	})
	return addr
}

// KillMaster kills the master, as a crash would, and returns its address.
// The Sentinels notice after sentinelDownAfter and promote the replica;
// WaitFailover waits for that.
func (s *Sentinel) KillMaster() string {
	s.tb.Helper()
	addr := s.MasterAddr()
	for _, n := range s.data {
		if n.addr() == addr {
			n.stop()
			return addr
		}
	}
	s.tb.Fatalf("the master %s is none of the group's nodes", addr)
	return ""
}

// Failover asks a Sentinel for a failover without the master failing
// (SENTINEL FAILOVER), as an operator does for maintenance.
func (s *Sentinel) Failover() {
	s.tb.Helper()
	if err := s.clients[0].Failover(context.Background(), SentinelMaster).Err(); err != nil {
		s.tb.Fatalf("SENTINEL FAILOVER: %v", err)
	}
}

// WaitFailover waits until every Sentinel names a master other than old and
// that node answers as a master, and returns the new master's address.
func (s *Sentinel) WaitFailover(old string) string {
	s.tb.Helper()
	var addr string
	poll(s.tb, topologyTimeout, "the failover", func(ctx context.Context) error {
		addr = ""
		for i := range s.sentinels {
			a, err := s.clients[i].GetMasterAddrByName(ctx, SentinelMaster).Result()
			if err != nil {
				return err
			}
			if len(a) != 2 {
				return fmt.Errorf("sentinel %d: master address %q", i, a)
			}
			got := a[0] + ":" + a[1]
			if got == old || (addr != "" && got != addr) {
				return fmt.Errorf("sentinel %d names %s", i, got)
			}
			addr = got
		}
		c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: time.Second, ReadTimeout: time.Second})
		defer c.Close()
		info, err := c.Info(ctx, "replication").Result()
		if err != nil {
			return err
		}
		if !strings.Contains(info, "role:master") {
			return fmt.Errorf("%s is not a master yet", addr)
		}
		return nil
	})
	return addr
}

// poll calls check every 50 ms until it returns nil, and fails tb with its
// last error when that takes longer than limit. Topology changes have no
// event to wait for, only states to read.
func poll(tb testing.TB, limit time.Duration, what string, check func(ctx context.Context) error) {
	tb.Helper()
	deadline := time.Now().Add(limit)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := check(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("waiting for %s: not within %v: %v", what, limit, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
