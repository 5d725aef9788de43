package domain

import _ "github.com/example/monolith/platform/bus"
