package redisstore_test

import (
	"testing"

	"github.com/caddy-idv/caddy-idv/internal/e2e"
	"github.com/caddy-idv/caddy-idv/store"
	redisstore "github.com/caddy-idv/caddy-idv/store/redis"
	"github.com/caddy-idv/caddy-idv/store/storetest"
)

// TestConformanceSentinel runs the conformance suite through the Sentinel
// URL form on a real Sentinel group (one master, one replica, three
// Sentinels).
func TestConformanceSentinel(t *testing.T) {
	g := e2e.StartSentinel(t)
	storetest.Run(t, func(t *testing.T, clock *storetest.Clock) store.Store {
		return newStore(t, g.URL(), redisstore.Options{Now: clock.Now, Prefix: newPrefix()})
	})
}

// TestConformanceCluster runs the conformance suite through the Cluster URL
// form on a real three-master Redis Cluster.
func TestConformanceCluster(t *testing.T) {
	c := e2e.StartCluster(t)
	storetest.Run(t, func(t *testing.T, clock *storetest.Clock) store.Store {
		return newStore(t, c.URL(), redisstore.Options{Now: clock.Now, Prefix: newPrefix()})
	})
}
