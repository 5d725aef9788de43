// Package settings keeps every context's runtime settings: the definitions
// each context declares with setting.Declare, stored when the app starts,
// and the values set through its HTTP API, validated against them. What it
// publishes, handles and serves: docs/events.md.
package settings
