// Package e2e drives the real binary over HTTP, once per configuration file,
// with two instances sharing the broker and the database where the adapter
// allows it.
package e2e_test

import (
	"testing"

	"github.com/example/monolith/internal/apptest"
)

func TestMain(m *testing.M) { apptest.Main(m) }
