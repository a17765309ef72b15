package api

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// FieldError is one problem found in a manifest, placed in its file.
type FieldError struct {
	// File is the name given to Decode ("-" for stdin, by convention).
	File string
	// Line is the 1-based line of the offending field, or of the document
	// when no better place is known.
	Line int
	// Path is the field path inside the object (spec.ports[0].nodePort);
	// empty for problems with the document as a whole.
	Path string
	// Msg says what is wrong and, where the fix is obvious, what to do.
	Msg string
	// Doc is the 1-based index of the document in the file; DocLine the
	// line where that document starts. MultiDoc reports whether the file
	// holds more than one document (then Error names the document).
	Doc      int
	DocLine  int
	MultiDoc bool
	// Err is the sentinel this error is an instance of (ErrUnknownField,
	// ErrWrongType, ErrInvalid, ...).
	Err error
}

// Error formats as "file:line: path: message", the form editors and CI
// logs link to, followed by the document when the file holds several.
func (e *FieldError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	if e.MultiDoc && e.Doc > 0 {
		fmt.Fprintf(&b, " (document %d at line %d)", e.Doc, e.DocLine)
	}
	return b.String()
}

// Unwrap returns the sentinel, so errors.Is(err, ErrUnknownField) works.
func (e *FieldError) Unwrap() error { return e.Err }

// FileErrors is every problem found in one file, in file order.
type FileErrors struct {
	File   string
	Errors []*FieldError
}

// Error is one FieldError per line.
func (e *FileErrors) Error() string {
	lines := make([]string, len(e.Errors))
	for i, fe := range e.Errors {
		lines[i] = fe.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap exposes the individual errors to errors.Is and errors.As.
func (e *FileErrors) Unwrap() []error {
	out := make([]error, len(e.Errors))
	for i, fe := range e.Errors {
		out[i] = fe
	}
	return out
}

// Errors places validation errors (from Validate or ValidateUpdate) in the
// object's source file: each gets the line of its field, or of the nearest
// enclosing field that appears in the manifest (a defaulted field has no
// line of its own). It returns nil for an empty list.
func (o *Object) Errors(errs field.ErrorList) error {
	if len(errs) == 0 {
		return nil
	}
	fe := &FileErrors{File: o.File}
	for _, e := range errs {
		if e.Field == "<nil>" {
			e = &field.Error{Type: e.Type, Field: "", BadValue: e.BadValue, Detail: e.Detail}
		}
		path := o.pathPrefix + e.Field
		if o.pathPrefix != "" && e.Field == "" {
			path = strings.TrimSuffix(o.pathPrefix, ".")
		}
		fe.Errors = append(fe.Errors, &FieldError{
			File:     o.File,
			Line:     o.LineOf(e.Field),
			Path:     path,
			Msg:      e.ErrorBody(),
			Doc:      o.Doc,
			DocLine:  o.DocLine,
			MultiDoc: o.multiDoc,
			Err:      ErrInvalid,
		})
	}
	return fe
}
