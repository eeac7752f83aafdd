package smoke

import "encoding/binary"

// Multiboot (version 1) constants. With the address flag set, the header
// carries its own load addresses, so QEMU loads the file as a flat binary
// without parsing ELF.
const (
	multibootMagic       = 0x1BADB002
	multibootAddrFlag    = 1 << 16
	multibootLoadAddress = 0x00100000
	multibootHeaderSize  = 32
	// debugExitPort is the I/O port of QEMU's isa-debug-exit device as
	// the probe configures it; a byte v written there ends QEMU with
	// status 2*v+1.
	debugExitPort = 0xf4
)

// multibootImage returns a tiny x86 kernel that QEMU boots with -kernel: it
// writes msg to the first serial port, then, when exit is set, ends QEMU
// through isa-debug-exit, and otherwise halts forever with interrupts off.
//
// Doctor uses it to learn whether an accelerator runs guest code at all.
// An empty msg without exit gives a guest that never prints, which tests use
// for timeouts.
func multibootImage(msg string, exit bool) []byte {
	// 32-bit protected-mode code, as multiboot starts it.
	code := []byte{0xBA, 0xF8, 0x03, 0x00, 0x00} // mov edx, 0x3f8 (COM1 data)
	for i := 0; i < len(msg); i++ {
		code = append(code, 0xB0, msg[i], 0xEE) // mov al, byte; out dx, al
	}
	if exit {
		code = append(code, 0xB0, 0x00, 0xE6, debugExitPort) // mov al, 0; out 0xf4, al
	}
	code = append(code, 0xFA, 0xF4, 0xEB, 0xFC) // cli; hlt; jmp back to cli

	// QEMU reads the first 8 KiB to look for kernel headers, so the file
	// is padded to at least that size with zeros.
	img := make([]byte, max(8192, multibootHeaderSize+len(code)))
	le := binary.LittleEndian
	var flags uint32 = multibootAddrFlag
	le.PutUint32(img[0:], multibootMagic)
	le.PutUint32(img[4:], flags)
	le.PutUint32(img[8:], -(uint32(multibootMagic) + flags)) // the three fields sum to 0
	le.PutUint32(img[12:], multibootLoadAddress)             // header_addr
	le.PutUint32(img[16:], multibootLoadAddress)             // load_addr
	le.PutUint32(img[20:], 0)                                // load_end_addr: whole file
	le.PutUint32(img[24:], 0)                                // bss_end_addr: no bss
	le.PutUint32(img[28:], multibootLoadAddress+multibootHeaderSize)

	copy(img[multibootHeaderSize:], code)
	return img
}
