package bus

import _ "github.com/example/monolith/contexts/alpha"
