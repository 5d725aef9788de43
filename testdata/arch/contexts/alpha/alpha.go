package alpha

import _ "github.com/example/monolith/contexts/beta"
