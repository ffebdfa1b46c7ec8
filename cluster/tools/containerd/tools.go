//go:build tools

// Package tools pins containerd 2 for the cluster lane: the daemon, its runc
// shim and ctr. Debian bookworm's containerd is 1.6, which has no CDI
// device injection (the DRA driver's claims reach containers through CDI).
package tools

import (
	_ "github.com/containerd/containerd/v2/cmd/containerd"
	_ "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2"
	_ "github.com/containerd/containerd/v2/cmd/ctr"
)
