// Command etcd is the upstream etcd server, built from the Go module proxy so the
// integration tests do not depend on a distribution package that is too old for
// the kube-apiserver version in go.mod.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
