// Package settings keeps every context's runtime settings: the definitions
// each context declares with setting.Declare, stored when the app starts,
// and the values set through its HTTP API, validated against them.
//
// Publishes: settings.setting.updated, settings.validation.failed. Consumes:
// no event. Settings: none.
package settings
