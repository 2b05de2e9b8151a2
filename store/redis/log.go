package redisstore

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// repeatWindow is how long go-redis lines of one kind (one format string)
// are counted instead of logged after one was logged: during an outage
// go-redis reports the same failed dial for every call, and the store has
// said that Redis is unavailable already.
const repeatWindow = time.Minute

// goRedisLog is where go-redis's own log lines go. go-redis has one logger
// for the whole process (redis.SetLogger), which writes plain text to
// stderr unless replaced; it is replaced once, by the first New, with this
// router, which hands each line to the zap logger of the most recently
// opened Store that is still open (a configuration reload opens the new
// Store before it closes the old one), and drops them while none is.
var (
	goRedisLog     = newLogRouter(time.Now)
	installLogOnce sync.Once
)

// installGoRedisLog makes go-redis log through goRedisLog.
func installGoRedisLog() {
	installLogOnce.Do(func() { redis.SetLogger(goRedisLog) })
}

// logRouter implements go-redis's logging interface (Printf) on zap.
type logRouter struct {
	now func() time.Time

	mu      sync.Mutex
	loggers []*zap.Logger // of the open Stores, oldest first
	last    map[string]time.Time
	dropped map[string]int
}

func newLogRouter(now func() time.Time) *logRouter {
	return &logRouter{now: now, last: make(map[string]time.Time), dropped: make(map[string]int)}
}

// add routes go-redis's lines to l until remove(l) is called.
func (r *logRouter) add(l *zap.Logger) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.loggers = append(r.loggers, l)
}

// remove stops routing to l; lines go to the logger added before it, if
// that is still there.
func (r *logRouter) remove(l *zap.Logger) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if i := slices.Index(r.loggers, l); i >= 0 {
		r.loggers = slices.Delete(r.loggers, i, i+1)
	}
}

// Printf logs one line of go-redis. Lines that report a Sentinel's view of
// the topology are INFO; everything else go-redis logs is a connection or
// protocol problem, WARN. A line of a format logged less than repeatWindow
// ago is only counted, and the count goes with the next one logged.
func (r *logRouter) Printf(_ context.Context, format string, v ...any) {
	r.mu.Lock()
	if len(r.loggers) == 0 {
		r.mu.Unlock()
		return
	}
	l := r.loggers[len(r.loggers)-1]
	now := r.now()
	if last, ok := r.last[format]; ok && now.Sub(last) < repeatWindow {
		r.dropped[format]++
		r.mu.Unlock()
		return
	}
	r.last[format] = now
	suppressed := r.dropped[format]
	delete(r.dropped, format)
	r.mu.Unlock()

	level := zapcore.WarnLevel
	if isTopologyNews(format) {
		level = zapcore.InfoLevel
	}
	if ce := l.Check(level, "go-redis: "+strings.TrimSpace(fmt.Sprintf(format, v...))); ce != nil {
		var fields []zap.Field
		if suppressed > 0 {
			fields = append(fields, zap.Int("repeats_not_logged", suppressed))
		}
		ce.Write(fields...)
	}
}

// isTopologyNews reports whether a go-redis format string reports a change
// that Sentinel made or found, not a failure.
func isTopologyNews(format string) bool {
	for _, news := range []string{"sentinel: new master", "sentinel: selected addr", "sentinel: discovered new sentinel"} {
		if strings.HasPrefix(format, news) {
			return true
		}
	}
	return false
}
