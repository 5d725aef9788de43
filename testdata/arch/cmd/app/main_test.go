package main

import _ "github.com/example/monolith/contexts/alpha/internal/domain"
