//go:build !release

package failpoint

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
)

// Compiled reports whether this build contains the facility.
const Compiled = true

var (
	// enabled counts enabled points, so that Inject costs one atomic load
	// while none is.
	enabled atomic.Int32
	mu      sync.Mutex
	points  = map[Name]func() error{}
)

// Inject runs the function enabled at name, if any, and returns its
// result; otherwise it returns nil.
func Inject(name Name) error {
	if enabled.Load() == 0 {
		return nil
	}
	mu.Lock()
	fn := points[name]
	mu.Unlock()
	if fn == nil {
		return nil
	}
	return fn()
}

// Enable makes Inject(name) call fn until the returned disable function is
// called (calling it again does nothing). fn runs on the goroutine that
// reached the point, without any lock held. Enabling a point that is
// already enabled, or an unknown name, fails.
func Enable(name Name, fn func() error) (disable func(), err error) {
	if !known(name) {
		return nil, fmt.Errorf("failpoint: unknown point %q", name)
	}
	mu.Lock()
	defer mu.Unlock()
	if points[name] != nil {
		return nil, fmt.Errorf("failpoint: %s is already enabled", name)
	}
	points[name] = fn
	enabled.Add(1)
	var once sync.Once
	return func() { once.Do(func() { disablePoint(name) }) }, nil
}

func disablePoint(name Name) {
	mu.Lock()
	defer mu.Unlock()
	delete(points, name)
	enabled.Add(-1)
}

func known(name Name) bool {
	return slices.Contains(All(), name)
}
