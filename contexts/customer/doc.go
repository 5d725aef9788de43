// Package customer owns customers, one per user, and the deals they win.
//
// Publishes: customer.customer.created, customer.customer.updated,
// customer.deal.won. Consumes: identity.user.registered (creates the user's
// customer), identity.user.suspended (deactivates it), settings.setting.updated
// (its own settings). Settings: default_tier.
package customer
