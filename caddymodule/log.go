package caddymodule

import "go.uber.org/zap"

// Short names for the zap fields used here. Log lines name providers,
// login ids and error causes, never personal data.
var (
	zapString = zap.String
	zapError  = zap.Error
)
