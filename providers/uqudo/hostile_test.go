package uqudo

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"sync"
	"testing"

	"github.com/caddy-idv/caddy-idv/internal/hostile"
	"github.com/caddy-idv/caddy-idv/internal/hostile/hostiletest"
	"github.com/caddy-idv/caddy-idv/providers"
	"github.com/caddy-idv/caddy-idv/providers/uqudo/fakeuqudo"
)

// signingKey is one RSA key for every fake of TestHostileGateway: making
// one per fake would take most of the test's time.
var signingKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// TestHostileGateway makes each call of the provider meet a uqudo gone bad
// (internal/hostile): the token endpoint, session create, the Info API, the
// JWKS and the deletions. Every call must come back within the call
// timeout and bounded memory, with an error or a failed login.
func TestHostileGateway(t *testing.T) {
	// setup makes a harness whose route answers in mode m, and fails the
	// case if the operation never calls it.
	setup := func(t *testing.T) *harness {
		return newHarness(t, fakeuqudo.Options{Key: signingKey()}, nil)
	}
	inject := func(t *testing.T, h *harness, route string, m hostile.Mode) {
		h.fake.Fail(route, fakeuqudo.Fault{Hostile: m})
		before := h.fake.Count(route)
		t.Cleanup(func() {
			if h.fake.Count(route) == before {
				t.Errorf("the %s route was never called", route)
			}
		})
	}
	start := func(h *harness) func(context.Context) hostiletest.Outcome {
		return func(ctx context.Context) hostiletest.Outcome {
			return hostiletest.Started(h.p.Start(ctx, providers.StartRequest{ID: "login-0123456789abcdef"}))
		}
	}
	// completed is a login whose person has finished at uqudo: the real
	// answer of the next poll would complete it.
	completed := func(t *testing.T, h *harness) providers.Login {
		login, id := h.start()
		if err := h.fake.Complete(id, fakeuqudo.Result{}); err != nil {
			t.Fatal(err)
		}
		return login
	}
	poll := func(h *harness, login providers.Login) func(context.Context) hostiletest.Outcome {
		return func(ctx context.Context) hostiletest.Outcome { return hostiletest.Polled(h.p.Poll(ctx, login)) }
	}
	cancel := func(h *harness, login providers.Login) func(context.Context) hostiletest.Outcome {
		return func(ctx context.Context) hostiletest.Outcome { return hostiletest.Outcome{Err: h.p.Cancel(ctx, login)} }
	}
	hostiletest.Run(t, []hostiletest.Call{
		{Name: "start/token", Prepare: func(t *testing.T, m hostile.Mode) func(context.Context) hostiletest.Outcome {
			h := setup(t)
			inject(t, h, fakeuqudo.RouteToken, m)
			return start(h)
		}},
		{Name: "start/create", Prepare: func(t *testing.T, m hostile.Mode) func(context.Context) hostiletest.Outcome {
			h := setup(t)
			inject(t, h, fakeuqudo.RouteCreate, m)
			return start(h)
		}},
		{Name: "poll/info", Prepare: func(t *testing.T, m hostile.Mode) func(context.Context) hostiletest.Outcome {
			h := setup(t)
			login := completed(t, h)
			inject(t, h, fakeuqudo.RouteInfo, m)
			return poll(h, login)
		}},
		// The first result makes the provider fetch the JWKS.
		{Name: "poll/jwks", Prepare: func(t *testing.T, m hostile.Mode) func(context.Context) hostiletest.Outcome {
			h := setup(t)
			login := completed(t, h)
			inject(t, h, fakeuqudo.RouteJWKS, m)
			return poll(h, login)
		}},
		// A token uqudo refused (401) is fetched again on the next poll.
		{Name: "poll/token", Prepare: func(t *testing.T, m hostile.Mode) func(context.Context) hostiletest.Outcome {
			h := setup(t)
			login := completed(t, h)
			h.p.resetToken()
			inject(t, h, fakeuqudo.RouteToken, m)
			return poll(h, login)
		}},
		// The deletions' answers decide nothing (Poll deletes a result it
		// has already judged): Cancel is timed alone.
		{Name: "cancel/delete-info", Side: true, Prepare: func(t *testing.T, m hostile.Mode) func(context.Context) hostiletest.Outcome {
			h := setup(t)
			login := completed(t, h)
			inject(t, h, fakeuqudo.RouteDeleteInfo, m)
			return cancel(h, login)
		}},
		{Name: "cancel/delete-session", Side: true, Prepare: func(t *testing.T, m hostile.Mode) func(context.Context) hostiletest.Outcome {
			h := setup(t)
			login := completed(t, h)
			inject(t, h, fakeuqudo.RouteDeleteSession, m)
			return cancel(h, login)
		}},
	})
}
