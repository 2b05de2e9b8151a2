// Package redisstore is the [store.Store] and [store.Notifier] of
// `store redis <url>`: state shared by caddy-idv instances kept in Redis
// (a single server, Sentinel or Cluster) through github.com/redis/go-redis/v9,
// with publish/subscribe so that a revocation reaches every instance at once.
//
// # Time
//
// Expiry follows the store's clock (Options.Now), not Redis's, so that the
// conformance suite can move time with a fake clock and so that every
// implementation of the store judges expiry the same way. Each value is kept
// in an envelope that starts with its absolute expiry (see encodeEntry); Get
// and List judge it by Options.Now, and SetIfAbsent hands the current time to
// a Lua script that treats an entry expired by then as absent. Redis's own
// TTL on the key is only garbage collection: it is the entry's lifetime plus
// gcMargin, computed from the lifetime rather than from absolute times, so
// Redis never deletes an entry that a clock offset from Redis's (a fake
// clock, or an instance's clock running behind by up to gcMargin) still
// sees as live.
//
// # Errors
//
// Every error of Redis or of the connection (refused, timed out, a server
// error reply) wraps [store.ErrUnavailable], so that the module answers 503
// and fails closed; a call whose own context ended returns the context's
// error instead. go-redis reconnects by itself, so calls succeed again when
// Redis is back, without a restart.
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/caddy-idv/caddy-idv/store"
)

const (
	// defaultPrefix starts the name of every Redis key and channel that a
	// Store uses, unless Options.Prefix says otherwise.
	defaultPrefix = "idv:"
	// gcMargin is added to an entry's lifetime to give Redis's TTL; see the
	// package documentation.
	gcMargin = time.Minute
	// startPingTimeout bounds the check at New that Redis answers.
	startPingTimeout = 2 * time.Second
	// listBatch is the SCAN COUNT hint and the number of expiry reads sent
	// in one pipeline by List.
	listBatch = 500
	// headerLen is what List reads of each entry: enough for any header
	// (see encodeEntry).
	headerLen = 24
)

// Options configures a Store. The zero value is ready to use.
type Options struct {
	// Logger receives the connection state changes. Default: no logging.
	Logger *zap.Logger
	// Now is the clock by which entries expire. Default: time.Now.
	Now func() time.Time
	// Prefix starts the name of every Redis key and pub/sub channel the
	// store uses, so that several deployments (or tests) can share one
	// Redis. Default: "idv:".
	Prefix string
}

// Store is a [store.Store] and [store.Notifier] in Redis. Entry key k is kept
// in the Redis string Prefix+k; the lock called n in Prefix+"/lock/"+n (a
// key never starts with "/", so the two cannot meet); messages on channel c
// go through the Redis channel Prefix+c.
//
// Store is safe for concurrent use. Create it with [New] and release it with
// [Store.Close].
type Store struct {
	client redis.UniversalClient
	logger *zap.Logger
	// goRedisLogger receives go-redis's own lines while this Store is the
	// most recently opened one (see goRedisLog).
	goRedisLogger *zap.Logger
	now           func() time.Time
	prefix        string
	// addrs are the server addresses of the URL (host:port, never the
	// password), for messages; see Addresses.
	addrs []string
	// lease is how long a lock lives in Redis unless renewed; see Lock.
	lease time.Duration
	// acks and ackTimeout: see clientConfig.acks; replicas tracks the
	// master's replicas for writes they do not confirm (replicas.go).
	acks       int
	ackTimeout time.Duration
	replicas   replicaState

	// down is set after a call failed for want of Redis and cleared by the
	// next call that succeeds, so that each outage is logged twice (when it
	// starts and when it ends) however many calls it fails.
	down atomic.Bool

	// wakeMu guards wake, which holds per lock name a channel that is
	// closed when this Store releases that lock, so that waiters in this
	// process try again at once instead of at their next poll.
	wakeMu sync.Mutex
	wake   map[string]chan struct{}

	// done is closed by Close; renewals waits for the lock renewals, which
	// start only while closed (guarded by closeMu) is false.
	done      chan struct{}
	closeOnce sync.Once
	closeMu   sync.Mutex
	closed    bool
	renewals  sync.WaitGroup
}

// New returns a store on the Redis that rawURL names (the forms are listed in
// README.md). It parses rawURL and checks that Redis answers, but does not
// fail when it does not: it logs a warning and the store connects when Redis
// is back, failing the calls made meanwhile with errors that wrap
// [store.ErrUnavailable]. ctx bounds only that first check. Call Close when
// done.
func New(ctx context.Context, rawURL string, opts Options) (*Store, error) {
	cfg, err := parseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("redisstore: %w", err)
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Prefix == "" {
		opts.Prefix = defaultPrefix
	}
	s := &Store{
		client:     cfg.newClient(),
		logger:     opts.Logger,
		now:        opts.Now,
		prefix:     opts.Prefix,
		addrs:      cfg.addrs,
		lease:      defaultLease,
		acks:       cfg.acks,
		ackTimeout: cfg.ackTimeout,
		wake:       make(map[string]chan struct{}),
		done:       make(chan struct{}),
	}
	s.goRedisLogger = s.logger.Named("go-redis")
	installGoRedisLog()
	goRedisLog.add(s.goRedisLogger)
	fields := []zap.Field{
		zap.String("mode", cfg.mode),
		zap.Int("replica_acks", cfg.acks),
		zap.Strings("addresses", cfg.addrs),
		zap.Bool("tls", cfg.tls()),
		zap.String("prefix", s.prefix),
	}
	if cfg.insecure {
		s.logger.Warn("redisstore: insecure_skip_verify is set: the Redis server's TLS certificate is not checked, so anyone on the network path can read and change the shared state", fields...)
	}
	ping, cancel := context.WithTimeout(ctx, startPingTimeout)
	defer cancel()
	if err := s.client.Ping(ping).Err(); err != nil {
		s.down.Store(true)
		s.logger.Warn("redisstore: Redis does not answer; calls that need it fail until it does, and the store reconnects by itself",
			append(fields, zap.Error(err))...)
	} else {
		s.logger.Info("redisstore: connected", fields...)
	}
	return s, nil
}

// Addresses returns the host:port of each server the URL names (the
// Sentinels, or the Cluster's seed nodes), without user name or password, so
// that a message can say which Redis it means.
func (s *Store) Addresses() []string { return slices.Clone(s.addrs) }

// Close stops the lock renewals and closes the connections. Locks still held
// are left to expire; Subscribe calls return.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.closeMu.Lock()
		s.closed = true
		s.closeMu.Unlock()
		close(s.done)
		s.renewals.Wait()
		if cerr := s.client.Close(); cerr != nil {
			err = fmt.Errorf("redisstore: close: %w", cerr)
		}
		goRedisLog.remove(s.goRedisLogger)
	})
	return err
}

func (s *Store) key(k string) string { return s.prefix + k }

// fail turns the error of a call to Redis made for step into the error for
// the caller: the context's error when ctx is done (the caller gave up;
// Redis may be fine), else one that wraps store.ErrUnavailable.
func (s *Store) fail(ctx context.Context, step string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("redisstore: %s: %w", step, cerr)
	}
	// Unconfirmed writes are logged by replicated, and only writes fail
	// for them: taking them for an outage would log one whenever a read
	// succeeds in between.
	if !errors.Is(err, errNotReplicated) && s.down.CompareAndSwap(false, true) {
		s.logger.Warn("redisstore: Redis is unavailable; calls that need it fail until it is back", zap.String("step", step), zap.Error(err))
	}
	return fmt.Errorf("redisstore: %s: %w: %w", step, store.ErrUnavailable, err)
}

// ok records that a call to Redis succeeded.
func (s *Store) ok() {
	if s.down.Load() && s.down.CompareAndSwap(true, false) {
		s.logger.Info("redisstore: Redis is available again")
	}
}

// encodeEntry makes the Redis value of an entry: its absolute expiry in
// Unix milliseconds (0 for none) in decimal, a newline, and the value's
// bytes. The expiry is rounded up, so an entry may outlive its lifetime by
// under a millisecond but never expires early: a consumed one-time value
// stays consumed at least as long as it was asked to.
func encodeEntry(now time.Time, value []byte, ttl time.Duration) []byte {
	var exp int64
	if ttl > 0 {
		t := now.Add(ttl)
		exp = t.UnixMilli()
		if t.After(time.UnixMilli(exp)) {
			exp++
		}
		exp = max(exp, 1)
	}
	b := strconv.AppendInt(make([]byte, 0, 16+len(value)), exp, 10)
	b = append(b, '\n')
	return append(b, value...)
}

// decodeHeader returns the expiry of an encoded entry (0: none) and where
// its value starts.
func decodeHeader(raw []byte) (exp int64, start int, err error) {
	i := slices.Index(raw, '\n')
	if i <= 0 || i > 19 {
		return 0, 0, errors.New("not an entry of this store")
	}
	exp, err = strconv.ParseInt(string(raw[:i]), 10, 64)
	if err != nil || exp < 0 {
		return 0, 0, errors.New("not an entry of this store")
	}
	return exp, i + 1, nil
}

// live reports whether an entry that expires at exp (Unix ms, 0: never) is
// live at now, by the same rule as setIfAbsentScript.
func live(exp int64, now time.Time) bool {
	return exp == 0 || now.UnixMilli() < exp
}

// gcTTL is the Redis TTL of an entry that lives for ttl (0: none).
func gcTTL(ttl time.Duration) time.Duration {
	if ttl == 0 || ttl > maxGCTTL {
		return 0
	}
	return ttl + gcMargin
}

// maxGCTTL is the longest lifetime that gets a Redis TTL; longer ones (beyond
// any use the module has) are kept until deleted, rather than overflow.
const maxGCTTL = 100 * 365 * 24 * time.Hour

// Get returns the value of key, or store.ErrNotFound when it is missing or
// has expired. It leaves expired entries to Redis's TTL: deleting one here
// could delete the value that a SetIfAbsent on another instance has just put
// in its place.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	if err := store.CheckKey(key); err != nil {
		return nil, fmt.Errorf("redisstore: get: %w", err)
	}
	raw, err := s.client.Get(ctx, s.key(key)).Bytes()
	if errors.Is(err, redis.Nil) {
		s.ok()
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, s.fail(ctx, "get", err)
	}
	s.ok()
	exp, start, err := decodeHeader(raw)
	if err != nil {
		return nil, fmt.Errorf("redisstore: get: %w", err)
	}
	if !live(exp, s.now()) {
		return nil, store.ErrNotFound
	}
	return raw[start:], nil
}

// Set stores value under key, replacing any value and lifetime there. A ttl
// of 0 keeps it until deleted.
func (s *Store) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := store.CheckKey(key); err != nil {
		return fmt.Errorf("redisstore: set: %w", err)
	}
	if ttl < 0 {
		return fmt.Errorf("redisstore: set: negative ttl %v", ttl)
	}
	// A zero expiration makes go-redis send a plain SET, which also drops
	// any TTL the key had.
	entry := encodeEntry(s.now(), value, ttl)
	if s.acks == 0 {
		if err := s.client.Set(ctx, s.key(key), entry, gcTTL(ttl)).Err(); err != nil {
			return s.fail(ctx, "set", err)
		}
		s.ok()
		return nil
	}
	if _, err := s.replicated(ctx, key, func(p redis.Pipeliner) redis.Cmder {
		return p.Set(ctx, s.key(key), entry, gcTTL(ttl))
	}); err != nil {
		return s.fail(ctx, "set", err)
	}
	s.ok()
	return nil
}

// setIfAbsentScript is SET NX PX with the store's clock: it sets KEYS[1] to
// ARGV[1] unless the key holds an entry that is live at ARGV[2] (Unix ms),
// with a Redis TTL of ARGV[3] ms (0: none), and returns 1 if it did. Anything
// in the key that is not an entry counts as live: refusing is the safe
// answer for a one-time value.
var setIfAbsentScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur then
	local exp = tonumber(string.match(cur, '^(%d+)\n'))
	if exp == nil or exp == 0 or tonumber(ARGV[2]) < exp then
		return 0
	end
end
if ARGV[3] == '0' then
	redis.call('SET', KEYS[1], ARGV[1])
else
	redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
end
return 1
`)

// SetIfAbsent stores value under key unless a live value is there, and
// reports whether it did. The check and the write are one Lua script, so of
// concurrent callers on every instance exactly one gets true.
//
// If the connection fails after Redis ran the script but before the answer
// arrived, go-redis may run it again, which then finds the value and answers
// false: the value is consumed and nobody gets true, which fails closed.
func (s *Store) SetIfAbsent(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if err := store.CheckKey(key); err != nil {
		return false, fmt.Errorf("redisstore: set if absent: %w", err)
	}
	if ttl < 0 {
		return false, fmt.Errorf("redisstore: set if absent: negative ttl %v", ttl)
	}
	now := s.now()
	keys := []string{s.key(key)}
	args := []any{encodeEntry(now, value, ttl), now.UnixMilli(), gcTTL(ttl).Milliseconds()}
	if s.acks == 0 {
		n, err := setIfAbsentScript.Run(ctx, s.client, keys, args...).Int()
		if err != nil {
			return false, s.fail(ctx, "set if absent", err)
		}
		s.ok()
		return n == 1, nil
	}
	// The script by its hash, and by its text if Redis does not know it
	// yet (what Script.Run does, which cannot be pipelined).
	cmd, err := s.replicated(ctx, key, func(p redis.Pipeliner) redis.Cmder {
		return setIfAbsentScript.EvalSha(ctx, p, keys, args...)
	})
	if redis.HasErrorPrefix(err, "NOSCRIPT") {
		cmd, err = s.replicated(ctx, key, func(p redis.Pipeliner) redis.Cmder {
			return setIfAbsentScript.Eval(ctx, p, keys, args...)
		})
	}
	var n int
	if c, ok := cmd.(*redis.Cmd); ok && (err == nil || errors.Is(err, errNotReplicated)) {
		var cerr error
		if n, cerr = c.Int(); cerr == nil && n == 0 {
			// The value was there: nothing was written that a
			// failover could lose.
			err = nil
		}
		if cerr == nil && n == 1 && err != nil {
			// Written, but not confirmed, so the caller is told it
			// failed: take the value back, so that trying again can
			// consume it rather than find it consumed.
			s.undo(ctx, key, args[0].([]byte))
		}
	}
	if err != nil {
		return false, s.fail(ctx, "set if absent", err)
	}
	s.ok()
	return n == 1, nil
}

// undoScript deletes KEYS[1] if it still holds ARGV[1], the entry that a
// SetIfAbsent wrote.
var undoScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	return redis.call('DEL', KEYS[1])
end
return 0
`)

// undo deletes the entry that SetIfAbsent wrote under key, if it is still
// there. Nobody else can have written the same bytes, since that
// SetIfAbsent found the key taken. It is best effort: on a master about to
// be replaced the write is lost anyway.
func (s *Store) undo(ctx context.Context, key string, entry []byte) {
	if err := undoScript.Run(ctx, s.client, []string{s.key(key)}, entry).Err(); err != nil {
		s.logger.Debug("redisstore: taking back an unconfirmed write failed", zap.Error(err))
	}
}

// Delete removes key; deleting a missing key is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := store.CheckKey(key); err != nil {
		return fmt.Errorf("redisstore: delete: %w", err)
	}
	if err := s.client.Del(ctx, s.key(key)).Err(); err != nil {
		return s.fail(ctx, "delete", err)
	}
	s.ok()
	return nil
}

// List returns, sorted, the keys of the live entries under prefix (at any
// depth), which must end in "/". It walks the keys with SCAN MATCH (on every
// master of a Cluster), never KEYS, so Redis is not blocked however many
// there are, and reads the expiry of each in pipelined batches. As with any
// SCAN, an entry written or deleted during the walk may or may not be
// listed.
func (s *Store) List(ctx context.Context, prefix string) ([]string, error) {
	if err := store.CheckPrefix(prefix); err != nil {
		return nil, fmt.Errorf("redisstore: list: %w", err)
	}
	names, err := s.scan(ctx, escapeGlob(s.key(prefix))+"*")
	if err != nil {
		return nil, s.fail(ctx, "list", err)
	}
	now := s.now()
	var keys []string
	for batch := range slices.Chunk(names, listBatch) {
		cmds, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, name := range batch {
				p.GetRange(ctx, name, 0, headerLen-1)
			}
			return nil
		})
		if err != nil {
			return nil, s.fail(ctx, "list", err)
		}
		for i, cmd := range cmds {
			// A key deleted since the SCAN reads as "", which is no entry.
			exp, _, err := decodeHeader([]byte(cmd.(*redis.StringCmd).Val()))
			if err == nil && live(exp, now) {
				keys = append(keys, strings.TrimPrefix(batch[i], s.prefix))
			}
		}
	}
	s.ok()
	slices.Sort(keys)
	return keys, nil
}

// scan returns the Redis keys that match pattern, each once.
func (s *Store) scan(ctx context.Context, pattern string) ([]string, error) {
	var mu sync.Mutex
	seen := make(map[string]struct{})
	scanNode := func(ctx context.Context, c redis.Cmdable) error {
		it := c.Scan(ctx, 0, pattern, listBatch).Iterator()
		for it.Next(ctx) {
			mu.Lock()
			seen[it.Val()] = struct{}{}
			mu.Unlock()
		}
		return it.Err()
	}
	var err error
	if cc, ok := s.client.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return scanNode(ctx, c) })
	} else {
		err = scanNode(ctx, s.client)
	}
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(seen))
	for name := range seen {
		names = append(names, name)
	}
	return names, nil
}

// escapeGlob escapes the characters that SCAN MATCH patterns give a meaning.
func escapeGlob(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[', ']', '\\', '^', '-':
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

var (
	_ store.Store    = (*Store)(nil)
	_ store.Notifier = (*Store)(nil)
)
