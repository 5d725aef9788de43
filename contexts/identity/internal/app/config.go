package app

import (
	"fmt"

	"golang.org/x/crypto/bcrypt"
)

// Config is identity's section of the configuration file, contexts.identity.
type Config struct {
	// BcryptCost is the work factor of password hashes (4-31). Each step
	// doubles the time a hash takes: 10 is ~50ms on a modern core. Lower it
	// only for load tests.
	BcryptCost int `yaml:"bcrypt_cost"`
}

// DefaultConfig uses bcrypt's default cost.
func DefaultConfig() Config { return Config{BcryptCost: bcrypt.DefaultCost} }

// Validate reports invalid keys by their path in the section.
func (c Config) Validate() error {
	if c.BcryptCost < bcrypt.MinCost || c.BcryptCost > bcrypt.MaxCost {
		return fmt.Errorf("bcrypt_cost: must be %d to %d, got %d", bcrypt.MinCost, bcrypt.MaxCost, c.BcryptCost)
	}
	return nil
}
