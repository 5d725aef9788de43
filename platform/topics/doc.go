// Package topics declares every event the bounded contexts exchange: one
// file per publishing context, each topic a typed [bus.Topic] bound to a
// versioned payload of plain fields. Contexts import this package and
// platform/bus, never each other.
//
// A payload is a contract: adding a field is compatible (consumers ignore
// what they do not know and see zero values for what is missing); renaming,
// removing or retyping a field is not, and needs a new topic.
package topics
