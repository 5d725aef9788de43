// Package settings keeps every context's runtime settings: the definitions
// each context announces at start, and the values set through its HTTP API,
// validated against them.
//
// Publishes: settings.setting.updated, settings.validation.failed. Consumes:
// settings.schema.announced. Settings: none.
package settings
