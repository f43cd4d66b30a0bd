//go:build cudaemu

package gputest

import (
	"github.com/org/vat/internal/cudaemu"
	"github.com/org/vat/internal/device"
)

func init() { emulated = func() device.GPU { return &cudaemu.Device{} } }
