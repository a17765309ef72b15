package api

import (
	"fmt"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/randfill"
)

// TestDecodeAcceptsEveryField fills objects of every kind with random
// values in every field, encodes them, and decodes them strictly: the walk
// must know every field of every type (a field it lacked would be an
// "unknown field" error on a manifest kubectl accepts).
func TestDecodeAcceptsEveryField(t *testing.T) {
	f := randomFiller(1)
	rounds := 3
	if testing.Short() {
		rounds = 1
	}
	for _, k := range Kinds() {
		for i := 0; i < rounds; i++ {
			t.Run(fmt.Sprintf("%s/%d", k.GVK.Kind, i), func(t *testing.T) {
				obj := k.New()
				f.Fill(obj)
				if b, _ := Encode(obj, "json"); len(b) < 200 {
					t.Fatalf("random object too small to test anything:\n%s", b)
				}
				for _, format := range []string{"json", "yaml"} {
					b, err := Encode(obj, format)
					if err != nil {
						t.Fatal(err)
					}
					if _, err := Decode("random."+format, b); err != nil {
						t.Fatalf("%s:\n%v", format, err)
					}
				}
			})
		}
	}
}

// randomFiller fills objects with random but encodable values.
func randomFiller(seed int64) *randfill.Filler {
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._"
	quantities := []string{"0", "1", "100m", "1.5Gi", "2k", "3e3"}
	return randfill.NewWithSeed(seed).NilChance(0.5).NumElements(1, 2).MaxDepth(12).Funcs(
		func(s *string, c randfill.Continue) {
			b := make([]byte, c.Intn(8))
			for i := range b {
				b[i] = letters[c.Intn(len(letters))]
			}
			*s = string(b)
		},
		func(tm *metav1.Time, c randfill.Continue) {
			*tm = metav1.NewTime(time.Unix(c.Int63n(1<<32), 0).UTC())
		},
		func(tm *metav1.MicroTime, c randfill.Continue) {
			*tm = metav1.NewMicroTime(time.Unix(c.Int63n(1<<32), 0).UTC())
		},
		func(q *resource.Quantity, c randfill.Continue) {
			*q = resource.MustParse(quantities[c.Intn(len(quantities))])
		},
		func(v *intstr.IntOrString, c randfill.Continue) {
			if c.Intn(2) == 0 {
				*v = intstr.FromInt32(c.Int31n(1000))
			} else {
				*v = intstr.FromString("http")
			}
		},
		func(r *runtime.RawExtension, c randfill.Continue) {
			r.Raw = []byte(`{"a":[1,"b",true]}`)
		},
		func(r *metav1.FieldsV1, c randfill.Continue) {
			r.SetRawBytes([]byte(`{"f:metadata":{}}`))
		},
		func(d *metav1.Duration, c randfill.Continue) {
			d.Duration = time.Duration(c.Int63n(int64(time.Hour)))
		},
		func(x *float64, c randfill.Continue) { *x = float64(c.Intn(1000)) / 8 },
	)
}

// TestNoPanicOnRandomObjects: defaulting, validation (create and update),
// PrepareForCreate and the selectors' field extraction never panic, whatever
// the object holds — they run in the API server on every request.
func TestNoPanicOnRandomObjects(t *testing.T) {
	f := randomFiller(2)
	for _, k := range Kinds() {
		for i := 0; i < 3; i++ {
			t.Run(fmt.Sprintf("%s/%d", k.GVK.Kind, i), func(t *testing.T) {
				obj, old := k.New(), k.New()
				f.Fill(obj)
				f.Fill(old)
				Default(obj)
				_ = Validate(obj)
				_ = ValidateUpdate(obj, old)
				_ = ValidateUpdate(obj, k.New())
				_ = SelectableFields(obj)
				PrepareForCreate(obj)
				_ = Validate(k.New())
			})
		}
	}
}
