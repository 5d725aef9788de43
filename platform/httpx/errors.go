package httpx

import (
	"errors"
	"fmt"
	"net/http"
)

// Error is an error with its HTTP status and a stable machine-readable code;
// it is written as {"error": {"code": ..., "message": ...}}.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

// Errorf builds an Error.
func Errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// BadRequest is a 400 bad_request: the request is malformed.
func BadRequest(format string, args ...any) *Error {
	return Errorf(http.StatusBadRequest, "bad_request", format, args...)
}

// NotFound is a 404 not_found.
func NotFound(format string, args ...any) *Error {
	return Errorf(http.StatusNotFound, "not_found", format, args...)
}

// Conflict is a 409 conflict: the request clashes with the current state.
func Conflict(format string, args ...any) *Error {
	return Errorf(http.StatusConflict, "conflict", format, args...)
}

// Unauthorized is a 401 unauthorized: the request lacks valid credentials.
func Unauthorized(format string, args ...any) *Error {
	return Errorf(http.StatusUnauthorized, "unauthorized", format, args...)
}

// Forbidden is a 403 forbidden: the request is refused.
func Forbidden(format string, args ...any) *Error {
	return Errorf(http.StatusForbidden, "forbidden", format, args...)
}

// Unprocessable is a 422 validation_failed: the request is well-formed but invalid.
func Unprocessable(format string, args ...any) *Error {
	return Errorf(http.StatusUnprocessableEntity, "validation_failed", format, args...)
}

// asError maps any error to an Error; unknown errors are a 500 whose detail
// stays in the logs.
func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return Errorf(http.StatusInternalServerError, "internal", "internal error")
}
