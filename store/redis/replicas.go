package redisstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// replicaGrace is how long the master must have had no replica at all
// before a write that no replica confirmed is accepted anyway. In a
// Sentinel failover the old master loses its replica the moment that
// replica is promoted, and go-redis moves to the new master only when the
// Sentinels announce it, a second or two later: writes made on the old
// master in between are discarded when it becomes a replica, so they must
// fail. Once the grace has passed the master is taken to be one that lost
// its replica for good (the old master crashed and the replica took over,
// or the replica crashed), and writes go on unconfirmed rather than fail
// until a replica is back.
const replicaGrace = 3 * time.Second

// errNotReplicated is the cause of a write that Redis did but too few
// replicas confirmed in time: a failover could lose it, so it does not
// count as done.
var errNotReplicated = errors.New("not confirmed by enough replicas in time (see replica_acks)")

// replicaState follows a master that has no replica.
type replicaState struct {
	mu sync.Mutex
	// noneSince is when a master was first seen without any replica,
	// zero while writes are confirmed.
	noneSince time.Time
	// unconfirmed is set while writes are accepted without confirmation,
	// and failing while they are refused, so that each is logged once.
	unconfirmed, failing bool
}

// replicated runs the write that queue adds to a pipeline, then WAIT for
// s.acks replicas on the same connection (WAIT covers the writes of its
// own connection only). It returns the write's command, and an error: the
// write's own or the connection's, or one that wraps errNotReplicated when
// fewer replicas confirmed it in time and unconfirmed writes are not
// accepted (see replicaGrace). Callers turn errors into the store's with
// s.fail.
func (s *Store) replicated(ctx context.Context, key string, queue func(p redis.Pipeliner) redis.Cmder) (redis.Cmder, error) {
	node, err := s.master(ctx, key)
	if err != nil {
		return nil, err
	}
	s.replicas.mu.Lock()
	unconfirmed := s.replicas.unconfirmed
	s.replicas.mu.Unlock()
	var write redis.Cmder
	var wait, role *redis.Cmd
	_, err = node.Pipelined(ctx, func(p redis.Pipeliner) error {
		write = queue(p)
		if unconfirmed {
			// WAIT would take at least a tick of Redis's timer (100 ms)
			// to say that no replica confirmed; ROLE says whether
			// there is one at once.
			role = p.Do(ctx, "ROLE")
		} else {
			wait = p.Do(ctx, "WAIT", s.acks, s.ackTimeout.Milliseconds())
		}
		return nil
	})
	if werr := write.Err(); werr != nil && !errors.Is(werr, redis.Nil) {
		return write, werr
	}
	if err != nil {
		return write, err
	}
	if unconfirmed {
		if replicaCount(role) > 0 {
			s.confirmed()
		}
		return write, nil
	}
	n, err := wait.Int()
	if err != nil {
		return write, err
	}
	if n >= s.acks {
		s.confirmed()
		return write, nil
	}
	if s.acceptUnconfirmed(ctx, node) {
		return write, nil
	}
	return write, fmt.Errorf("%w: %d of %d", errNotReplicated, n, s.acks)
}

// confirmed records a write that the replicas confirmed.
func (s *Store) confirmed() {
	r := &s.replicas
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.unconfirmed || r.failing {
		s.logger.Info("redisstore: Redis replicas confirm writes again")
	}
	r.noneSince, r.unconfirmed, r.failing = time.Time{}, false, false
}

// acceptUnconfirmed reports whether a write that too few replicas
// confirmed may count as done: only when the master has had no replica at
// all for replicaGrace. It asks the node for its replicas (ROLE).
func (s *Store) acceptUnconfirmed(ctx context.Context, node masterNode) bool {
	replicas := replicaCount(node.Do(ctx, "ROLE"))
	r := &s.replicas
	r.mu.Lock()
	defer r.mu.Unlock()
	// The wall clock, not Options.Now: the grace is about how long Redis
	// has been without replicas, which a test's entry clock does not
	// follow.
	now := time.Now()
	if replicas != 0 {
		// A replica that lags, or a node that is no master (any more):
		// the write may be lost.
		r.noneSince = time.Time{}
	} else if r.noneSince.IsZero() {
		r.noneSince = now
	} else if now.Sub(r.noneSince) >= replicaGrace {
		if !r.unconfirmed {
			r.unconfirmed, r.failing = true, false
			s.logger.Warn("redisstore: the Redis master has no replica; writes are accepted unconfirmed, and a failover now would lose the latest ones",
				zap.Duration("without_replica", now.Sub(r.noneSince).Round(time.Millisecond)))
		}
		return true
	}
	if !r.failing {
		r.failing, r.unconfirmed = true, false
		s.logger.Warn("redisstore: writes are not confirmed by the Redis replicas (a failover may be under way); they fail until they are",
			zap.Int("replicas", replicas), zap.Int("replica_acks", s.acks))
	}
	return false
}

// replicaCount returns the number of replicas in the answer to ROLE, or -1
// when the node is no master or did not answer.
func replicaCount(cmd *redis.Cmd) int {
	role, err := cmd.Slice()
	if err != nil || len(role) < 3 || role[0] != "master" {
		return -1
	}
	list, ok := role[2].([]any)
	if !ok {
		return -1
	}
	return len(list)
}

// masterNode is what replicated needs of the client of one master.
type masterNode interface {
	Pipelined(ctx context.Context, fn func(redis.Pipeliner) error) ([]redis.Cmder, error)
	Do(ctx context.Context, args ...any) *redis.Cmd
}

// master returns the client of the master that holds key: the client
// itself, or on a Cluster the client of the key's master, so that a
// pipeline of a write and WAIT goes over one connection to it.
func (s *Store) master(ctx context.Context, key string) (masterNode, error) {
	if cc, ok := s.client.(*redis.ClusterClient); ok {
		return cc.MasterForKey(ctx, s.key(key))
	}
	return s.client, nil
}
