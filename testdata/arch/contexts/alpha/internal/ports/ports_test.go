package ports_test

// Allowed: tests may set up what they need.
import _ "github.com/example/monolith/contexts/alpha/internal/store"
