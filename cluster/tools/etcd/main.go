// etcd 3.6 for the cluster lane: Debian's etcd 3.4 is too old for
// Kubernetes 1.34 (RequestWatchProgress). go install of etcd's server module
// is refused (its go.mod has replace lines), so this wrapper builds the same
// main as upstream's server/main.go.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
