package app

import _ "github.com/example/monolith/contexts/alpha/internal/ports"
