//go:build cudaemu

package cudaemu

/*
#cgo CXXFLAGS: -std=c++17 -O2 -Wall -Wno-sign-compare
#cgo LDFLAGS: -lstdc++ -lm
#include "launch.h"
*/
import "C"

import (
	"fmt"

	"github.com/org/vat/internal/backend/backendtest"
	"github.com/org/vat/internal/device"
	"github.com/org/vat/internal/rng"
)

var _ device.GPU = (*Device)(nil)

// Device runs package cuda's kernels on the CPU; memory, products and the
// DNN methods are those of backendtest.HostDevice.
type Device struct{ backendtest.HostDevice }

// Name names the device.
func (d *Device) Name() string { return "CUDA kernels emulated on the CPU" }

// grid is package cuda's launch geometry for total threads: blocks of 256,
// at most 65535·8 of them (grid-stride loops take the rest).
func grid(total int) C.uint {
	g := (total + 255) / 256
	return C.uint(min(max(g, 1), 65535*8))
}

// p returns the address of a device allocation's first float.
func p(m device.Mem) *C.float {
	d := backendtest.HM32(m)
	return (*C.float)(&d[0])
}

// need checks that each allocation holds at least n floats: an emulated
// kernel writes out of bounds as silently as a real one.
func need(n int, ms ...device.Mem) error {
	for _, m := range ms {
		if m.Len() < n {
			return fmt.Errorf("cudaemu: a kernel needs %d floats, the allocation has %d", n, m.Len())
		}
	}
	return nil
}

func (d *Device) Im2col(x, col device.Mem, n, c, h, w, kh, kw int) error {
	total := n * c * kh * kw * (h - kh + 1) * (w - kw + 1)
	if err := need(n*c*h*w, x); err != nil {
		return err
	}
	if err := need(total, col); err != nil {
		return err
	}
	C.emu_im2col(grid(total), p(x), p(col), C.int(n), C.int(c), C.int(h), C.int(w), C.int(kh), C.int(kw))
	return nil
}

func (d *Device) Col2im(col, x device.Mem, n, c, h, w, kh, kw int) error {
	if err := need(n*c*h*w, x); err != nil {
		return err
	}
	if err := need(n*c*kh*kw*(h-kh+1)*(w-kw+1), col); err != nil {
		return err
	}
	C.emu_col2im(grid(n*c*h*w), p(col), p(x), C.int(n), C.int(c), C.int(h), C.int(w), C.int(kh), C.int(kw))
	return nil
}

func (d *Device) BiasAct(y, b device.Mem, n, f, pp int, relu bool) error {
	if err := need(n*f*pp, y); err != nil {
		return err
	}
	if err := need(f, b); err != nil {
		return err
	}
	C.emu_bias_act(grid(n*f*pp), p(y), p(b), C.int(n), C.int(f), C.int(pp), cbool(relu))
	return nil
}

func (d *Device) ReluMask(out, y, g device.Mem, n int) error {
	if err := need(n, out, y, g); err != nil {
		return err
	}
	C.emu_relu_mask(grid(n), p(out), p(y), p(g), C.long(n))
	return nil
}

func (d *Device) MaxPool2(x, y device.Mem, nc, h, w int) error {
	if err := need(nc*h*w, x); err != nil {
		return err
	}
	if err := need(nc*(h/2)*(w/2), y); err != nil {
		return err
	}
	C.emu_maxpool2(grid(nc*(h/2)*(w/2)), p(x), p(y), C.int(nc), C.int(h), C.int(w))
	return nil
}

func (d *Device) MaxPool2Grad(x, y, gy, gx device.Mem, nc, h, w int) error {
	if err := need(nc*h*w, x, gx); err != nil {
		return err
	}
	if err := need(nc*(h/2)*(w/2), y, gy); err != nil {
		return err
	}
	C.emu_maxpool2_grad(grid(nc*h*w), p(x), p(y), p(gy), p(gx), C.int(nc), C.int(h), C.int(w))
	return nil
}

func (d *Device) Axpby(z device.Mem, a float32, x device.Mem, b float32, y device.Mem, n int) error {
	if err := need(n, z, x, y); err != nil {
		return err
	}
	C.emu_axpby(grid(n), p(z), C.float(a), p(x), C.float(b), p(y), C.long(n))
	return nil
}

func (d *Device) Mul(z, x, y device.Mem, n int) error {
	if err := need(n, z, x, y); err != nil {
		return err
	}
	C.emu_mul(grid(n), p(z), p(x), p(y), C.long(n))
	return nil
}

func (d *Device) Adadelta(w, g, accG, accU device.Mem, n int, rho, eps, lr float32) error {
	if err := need(n, w, g, accG, accU); err != nil {
		return err
	}
	C.emu_adadelta(grid(n), p(w), p(g), p(accG), p(accU), C.long(n), C.float(rho), C.float(eps), C.float(lr))
	return nil
}

// L2Normalize launches one block of 256 threads per sample, as package cuda does.
func (d *Device) L2Normalize(x, y device.Mem, n, m int, scale float32) error {
	if err := need(n*m, x, y); err != nil {
		return err
	}
	C.emu_l2normalize(grid(n*256), p(x), p(y), C.int(n), C.int(m), C.float(scale))
	return nil
}

func (d *Device) L2NormalizeGrad(x, g, gx device.Mem, n, m int, scale float32) error {
	if err := need(n*m, x, g, gx); err != nil {
		return err
	}
	C.emu_l2normalize_grad(grid(n*256), p(x), p(g), p(gx), C.int(n), C.int(m), C.float(scale))
	return nil
}

// Bernoulli launches one thread per 16 draws of a chunk, as package cuda does.
func (d *Device) Bernoulli(m device.Mem, n int, key, t uint64, v float32) error {
	if err := need(n, m); err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	const perChunk = rng.ChunkLen / 2 / 16 // threads per chunk: BERN_DRAWS 64-bit draws each
	C.emu_bernoulli_pcg(grid((n+rng.ChunkLen-1)/rng.ChunkLen*perChunk), p(m), C.long(n), C.ulonglong(key), C.ulonglong(t), C.float(v))
	return nil
}

// Normals launches one thread per four values, as package cuda does.
func (d *Device) Normals(x device.Mem, n int, key uint64) error {
	if err := need(n, x); err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	C.emu_normals_philox(grid((n+3)/4), p(x), C.long(n), C.ulonglong(key))
	return nil
}

// LossRows launches one thread per row, as package cuda does.
func (d *Device) LossRows(kind int, a, b, loss device.Mem, n, k int) error {
	if err := need(n*k, a, b); err != nil {
		return err
	}
	if err := need(n, loss); err != nil {
		return err
	}
	C.emu_loss_rows(grid(n), C.int(kind), p(a), p(b), p(loss), C.int(n), C.int(k))
	return nil
}

// LossGrad launches one thread per row, as package cuda does.
func (d *Device) LossGrad(kind, wrt int, a, b, g device.Mem, n, k int, c float64) error {
	if err := need(n*k, a, b, g); err != nil {
		return err
	}
	C.emu_loss_grad(grid(n), C.int(kind), C.int(wrt), p(a), p(b), p(g), C.int(n), C.int(k), C.double(c))
	return nil
}

func (d *Device) Adam(w, g, m, v device.Mem, n int, b1, b2, step, eps float32) error {
	if err := need(n, w, g, m, v); err != nil {
		return err
	}
	C.emu_adam(grid(n), p(w), p(g), p(m), p(v), C.long(n), C.float(b1), C.float(b2), C.float(step), C.float(eps))
	return nil
}

// cbool is a bool as a kernel's int argument.
func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// BatchNorm launches one block of 256 threads per channel, as package cuda does.
func (d *Device) BatchNorm(x, gamma, beta, runMean, runVar, xhat, y, invStd device.Mem, n, c, pp int, train, update bool, eps, momentum float64) error {
	if err := need(n*c*pp, x, xhat, y); err != nil {
		return err
	}
	if err := need(c, gamma, beta, runMean, runVar, invStd); err != nil {
		return err
	}
	C.emu_bn_forward(grid(c*256), p(x), p(gamma), p(beta), p(runMean), p(runVar), p(xhat), p(y), p(invStd),
		C.int(n), C.int(c), C.int(pp), cbool(train), cbool(update), C.double(eps), C.double(momentum))
	return nil
}

// BatchNormGrad launches one block of 256 threads per channel, as package cuda does.
func (d *Device) BatchNormGrad(wrt int, g, xhat, gamma, invStd, out device.Mem, n, c, pp int, train bool) error {
	if err := need(n*c*pp, g, xhat); err != nil {
		return err
	}
	if err := need(c, gamma, invStd); err != nil {
		return err
	}
	size := c
	if wrt == 0 {
		size = n * c * pp
	}
	if err := need(size, out); err != nil {
		return err
	}
	C.emu_bn_backward(grid(c*256), C.int(wrt), p(g), p(xhat), p(gamma), p(invStd), p(out), C.int(n), C.int(c), C.int(pp), cbool(train))
	return nil
}
