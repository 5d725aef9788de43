package main

import _ "github.com/example/monolith/contexts/beta"
