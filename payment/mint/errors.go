package mint

import (
	"errors"
	"fmt"
	"net/http"
)

// Error is a NUT-00 error: HTTP 400 with {"detail", "code"}.
type Error struct {
	Code   int    `json:"code"`
	Detail string `json:"detail"`
}

func (e *Error) Error() string { return fmt.Sprintf("mint: %s (code %d)", e.Detail, e.Code) }

// Error codes (the Cashu error code registry).
const (
	CodeOutputSigned     = 10002
	CodeProofInvalid     = 10003
	CodeSpent            = 11001
	CodeUnbalanced       = 11002
	CodeUnitUnsupported  = 11005
	CodeAmountOutOfRange = 11006
	CodeDuplicateInputs  = 11007
	CodeDuplicateOutputs = 11008
	CodeMixedUnits       = 11010
	CodeKeysetUnknown    = 12001
	CodeKeysetInactive   = 12002
	CodeQuoteNotPaid     = 20001
	CodeQuoteIssued      = 20002
	CodeQuotePending     = 20005
	CodeInvoicePaid      = 20006
	CodeQuoteExpired     = 20007
	CodeConditions       = 30001
	CodeBadRequest       = 40000
)

func mintErr(code int, format string, args ...any) *Error {
	return &Error{Code: code, Detail: fmt.Sprintf(format, args...)}
}

// status maps an error to its HTTP status and body.
func status(err error) (int, *Error) {
	var e *Error
	if errors.As(err, &e) {
		return http.StatusBadRequest, e
	}
	return http.StatusInternalServerError, &Error{Code: 0, Detail: "internal error"}
}
