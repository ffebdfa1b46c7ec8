//go:build tools

// Package tools pins Multus (thin plugin, cmd/multus) for the cluster lane.
// github.com/k8snetworkplumbingwg/multus-cni is not served by the module
// proxy under that path; the gopkg.in path is the same code.
package tools

import (
	_ "gopkg.in/k8snetworkplumbingwg/multus-cni.v4/cmd/multus"
)
