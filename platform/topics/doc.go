// Package topics declares every event the bounded contexts exchange: one
// file per publishing context, each topic a typed [bus.Topic] bound to a
// versioned payload of plain fields. Contexts import this package and
// platform/bus, never each other.
//
// A payload is a contract: adding a field is compatible (consumers ignore
// what they do not know and see zero values for what is missing); renaming,
// removing or retyping a field is not, and needs a new topic.
//
// Raise a topic's version when you add a field without omitempty (the
// generated JSON Schema then requires it; the schema compatibility test in
// cmd/app fails until the version is raised): handlers built for an older
// version then log that they get events they only partly read. Never raise
// it for an incompatible change: a handler poisons the older events still in
// flight whose payload no longer decodes.
package topics
