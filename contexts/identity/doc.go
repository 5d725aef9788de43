// Package identity owns users: registration, activation and suspension.
//
// Publishes: identity.user.registered, identity.user.activated,
// identity.user.suspended. Consumes: settings.setting.updated (its own
// settings). Settings: registration_open.
package identity
