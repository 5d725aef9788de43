package ports

import _ "github.com/example/monolith/contexts/alpha/internal/store"
