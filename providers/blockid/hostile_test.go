package blockid

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-idv/caddy-idv/internal/hostile"
	"github.com/caddy-idv/caddy-idv/internal/hostile/hostiletest"
	"github.com/caddy-idv/caddy-idv/providers"
	"github.com/caddy-idv/caddy-idv/providers/onekosmos"
	"github.com/caddy-idv/caddy-idv/providers/onekosmos/fake1kosmos"
	"github.com/caddy-idv/caddy-idv/store"
	"github.com/caddy-idv/caddy-idv/store/storetest"
)

// hostileHarness is newHarness with the call timeout of hostiletest.
func hostileHarness(t *testing.T) *harness {
	t.Helper()
	clock := storetest.NewClock(time.Unix(1_800_000_000, 0))
	f := fake1kosmos.New(fake1kosmos.Config{Now: clock.Now})
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	h := &harness{t: t, clock: clock, fake: f, srv: srv, store: store.NewMemory(clock.Now)}
	fc := f.Config()
	c := &Config{TenantOptions: onekosmos.TenantOptions{DNS: fc.DNS, Community: fc.Community, LicenseKey: fc.LicenseKey}}
	c.BaseURL = srv.URL
	core, logs := observer.New(zapcore.DebugLevel)
	h.logs = logs
	client := &http.Client{Timeout: hostiletest.Timeout}
	t.Cleanup(client.CloseIdleConnections)
	p, err := c.Open(providers.Env{Name: "blockid", Store: h.store, Logger: zap.New(core), HTTP: client, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	h.prov = p.(*provider)
	h.wallet = fake1kosmos.NewWallet("alice@example.com")
	h.wallet.Data = map[string]any{"firstname": "Alice", "lastname": "Liddell"}
	f.Enroll(h.wallet)
	t.Cleanup(h.noPII)
	return h
}

// TestHostileGateway makes each call of the provider meet a 1Kosmos tenant
// gone bad (internal/hostile): the bootstrap (community info, service
// discovery, the service key) when a login starts and when a poll finds
// the cache expired, session create and read, the poll and the account
// lookup. Every call must come back within the call timeout and bounded
// memory, with an error or a failed login.
func TestHostileGateway(t *testing.T) {
	inject := func(t *testing.T, h *harness, op fake1kosmos.Op, m hostile.Mode) {
		h.fake.InjectFault(op, fake1kosmos.Fault{Hostile: m})
		before := h.fake.Calls(op)
		t.Cleanup(func() {
			if h.fake.Calls(op) == before {
				t.Errorf("the %s endpoint was never called", op)
			}
		})
	}
	startCall := func(op fake1kosmos.Op) hostiletest.Call {
		return hostiletest.Call{Name: "start/" + string(op), Prepare: func(t *testing.T, m hostile.Mode) func(context.Context) hostiletest.Outcome {
			h := hostileHarness(t)
			inject(t, h, op, m)
			return func(ctx context.Context) hostiletest.Outcome {
				return hostiletest.Started(h.prov.Start(ctx, providers.StartRequest{ID: "login-0123456789abcdef"}))
			}
		}}
	}
	// pollCall polls a login the phone has answered; forget drops the
	// bootstrap cache first, as its expiry does.
	pollCall := func(op fake1kosmos.Op, forget bool) hostiletest.Call {
		return hostiletest.Call{Name: "poll/" + string(op), Prepare: func(t *testing.T, m hostile.Mode) func(context.Context) hostiletest.Outcome {
			h := hostileHarness(t)
			login, sid := h.start()
			h.approve(sid, fake1kosmos.ApproveOptions{})
			if forget {
				h.prov.client.Forget()
			}
			inject(t, h, op, m)
			return func(ctx context.Context) hostiletest.Outcome { return hostiletest.Polled(h.prov.Poll(ctx, login)) }
		}}
	}
	hostiletest.Run(t, []hostiletest.Call{
		startCall(fake1kosmos.OpCommunityInfo),
		startCall(fake1kosmos.OpDiscovery),
		startCall(fake1kosmos.OpPublicKeys),
		startCall(fake1kosmos.OpSessionNew),
		startCall(fake1kosmos.OpSessionInfo),
		pollCall(fake1kosmos.OpCommunityInfo, true),
		pollCall(fake1kosmos.OpDiscovery, true),
		pollCall(fake1kosmos.OpPublicKeys, true),
		pollCall(fake1kosmos.OpPoll, false),
		pollCall(fake1kosmos.OpUserInfo, false),
	})
}
