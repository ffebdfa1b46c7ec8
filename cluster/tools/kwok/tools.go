//go:build tools

// Package tools pins kwok (sigs.k8s.io/kwok/cmd/kwok) for the cluster
// lane's scale test (cluster/tests/scale.sh): fake nodes against the real
// API server. A module of its own so its dependency versions never drag
// the Kubernetes build's.
package tools

import (
	_ "sigs.k8s.io/kwok/cmd/kwok"
)
