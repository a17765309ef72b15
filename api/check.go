package api

import (
	"errors"
	"sort"
)

// Load is what `skiff apply -f` does with a file before sending anything:
// Decode it strictly, Default every object, and Validate it with v. Every
// problem of every document is returned together as one *FileErrors, each
// placed on its line; if there is any, no object is returned, so a file
// with one bad document applies nothing.
//
// Callers that put objects in a namespace other than "default" (skiff -n)
// should Decode, set the namespace, then Default and Validate themselves.
func (v Validator) Load(filename string, data []byte) ([]Object, error) {
	objs, err := Decode(filename, data)
	if err != nil {
		return nil, err
	}
	all := &FileErrors{File: filename}
	for i := range objs {
		o := &objs[i]
		Default(o.Obj)
		if err := o.Errors(v.ValidateObject(o.Obj)); err != nil {
			var fe *FileErrors
			if errors.As(err, &fe) {
				all.Errors = append(all.Errors, fe.Errors...)
			}
		}
	}
	if len(all.Errors) > 0 {
		sort.SliceStable(all.Errors, func(i, j int) bool {
			a, b := all.Errors[i], all.Errors[j]
			if a.Doc != b.Doc {
				return a.Doc < b.Doc
			}
			return a.Line < b.Line
		})
		return nil, all
	}
	return objs, nil
}

// Load decodes, defaults and validates a file with the default Validator;
// see Validator.Load.
func Load(filename string, data []byte) ([]Object, error) {
	return DefaultValidator().Load(filename, data)
}
