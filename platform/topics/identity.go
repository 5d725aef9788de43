package topics

import "github.com/example/monolith/platform/bus"

// UserRegistered is published by identity when a user signs up.
var UserRegistered = bus.NewTopic[UserRegisteredV1]("identity.user.registered", 1)

// UserRegisteredV1 never carries the password or its hash.
type UserRegisteredV1 struct {
	UserID string `json:"user_id"`
	Email  string `json:"email"`
	Name   string `json:"name"`
}

// UserActivated is published by identity when a user is activated.
var UserActivated = bus.NewTopic[UserActivatedV1]("identity.user.activated", 1)

// UserActivatedV1 names the activated user.
type UserActivatedV1 struct {
	UserID string `json:"user_id"`
}

// UserSuspended is published by identity when a user is suspended.
var UserSuspended = bus.NewTopic[UserSuspendedV1]("identity.user.suspended", 1)

// UserSuspendedV1 names the suspended user.
type UserSuspendedV1 struct {
	UserID string `json:"user_id"`
}
