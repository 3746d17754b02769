package nsm

import (
	"fmt"
	"io"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// SeedBytes is how much NSM randomness SeedKernelRNG credits to the kernel
// pool at start: 256 bits, enough to fully seed the kernel's CRNG.
const SeedBytes = 32

// SeedKernelRNG reads SeedBytes from src (the NSM) and adds them to the
// kernel's entropy pool with RNDADDENTROPY, crediting their full entropy,
// so that crypto/rand inside the enclave is seeded from hardware even when
// the enclave kernel has no other entropy source. It needs CAP_SYS_ADMIN
// (root inside the enclave). It writes to /dev/random; a failure is
// returned, never ignored.
func SeedKernelRNG(src io.Reader) error {
	f, err := os.OpenFile("/dev/random", os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("opening /dev/random: %w", err)
	}
	defer f.Close()
	return addEntropy(f, src)
}

// addEntropy builds a struct rand_pool_info {int entropy_count; int
// buf_size; __u32 buf[];} and passes it to the RNDADDENTROPY ioctl. No
// library wraps this ioctl, so it is written here.
func addEntropy(f *os.File, src io.Reader) error {
	seed := make([]byte, SeedBytes)
	defer clear(seed)
	if _, err := io.ReadFull(src, seed); err != nil {
		return fmt.Errorf("reading seed: %w", err)
	}
	info := make([]byte, 8+SeedBytes)
	defer clear(info)
	*(*int32)(unsafe.Pointer(&info[0])) = SeedBytes * 8
	*(*int32)(unsafe.Pointer(&info[4])) = SeedBytes
	copy(info[8:], seed)
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.RNDADDENTROPY, uintptr(unsafe.Pointer(&info[0])))
	if errno != 0 {
		return fmt.Errorf("RNDADDENTROPY: %w", errno)
	}
	return nil
}
