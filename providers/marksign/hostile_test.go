package marksign

import (
	"context"
	"testing"

	"github.com/caddy-idv/caddy-idv/internal/hostile"
	"github.com/caddy-idv/caddy-idv/internal/hostile/hostiletest"
	"github.com/caddy-idv/caddy-idv/providers"
	"github.com/caddy-idv/caddy-idv/providers/marksign/fakemarksign"
)

// TestHostileGateway makes each call of the provider meet a gateway gone
// bad (internal/hostile): every call must come back within the call
// timeout and bounded memory, with an error or a failed login.
func TestHostileGateway(t *testing.T) {
	// inject makes route hostile and fails the case if the operation never
	// calls it.
	inject := func(t *testing.T, h *harness, route string, m hostile.Mode) {
		h.fake.Inject(route, fakemarksign.Fault{Hostile: m})
		before := h.fake.Count(route)
		t.Cleanup(func() {
			if h.fake.Count(route) == before {
				t.Errorf("the %s route was never called", route)
			}
		})
	}
	hostiletest.Run(t, []hostiletest.Call{
		{Name: "start/login", Prepare: func(t *testing.T, m hostile.Mode) func(context.Context) hostiletest.Outcome {
			h := newHarness(t, fakemarksign.Options{}, nil)
			inject(t, h, fakemarksign.RouteLogin, m)
			return func(ctx context.Context) hostiletest.Outcome {
				return hostiletest.Started(h.p.Start(ctx, providers.StartRequest{ID: "login-0123456789abcdef",
					Input: map[string]string{"phone": ee.Phone, "personal_code": ee.Code}}))
			}
		}},
		{Name: "poll/status", Prepare: func(t *testing.T, m hostile.Mode) func(context.Context) hostiletest.Outcome {
			h := newHarness(t, fakemarksign.Options{}, nil)
			login, tok := h.start(ee.Phone, ee.Code)
			if err := h.fake.Approve(tok, fakemarksign.Outcome{}); err != nil {
				t.Fatal(err)
			}
			inject(t, h, fakemarksign.RouteStatus, m)
			return func(ctx context.Context) hostiletest.Outcome { return hostiletest.Polled(h.p.Poll(ctx, login)) }
		}},
		// The removal's answer decides nothing (Poll removes a session it
		// has already judged): Cancel is timed alone.
		{Name: "cancel/remove", Side: true, Prepare: func(t *testing.T, m hostile.Mode) func(context.Context) hostiletest.Outcome {
			h := newHarness(t, fakemarksign.Options{}, nil)
			login, _ := h.start(ee.Phone, ee.Code)
			inject(t, h, fakemarksign.RouteRemove, m)
			return func(ctx context.Context) hostiletest.Outcome {
				return hostiletest.Outcome{Err: h.p.Cancel(ctx, login)}
			}
		}},
	})
}
