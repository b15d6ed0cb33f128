/* QEMU `virt` rv32imc target: the firmware core on bare metal.
 *
 * UART: NS16550 at 0x10000000, polled; received bytes go through a ring buffer that is topped
 *       up on every HAL call, so nothing is lost while the core is busy (QEMU also holds bytes
 *       back while the 16-byte FIFO is full).
 * Time: CLINT mtime at 0x0200BFF8, 10 MHz.
 * Motors: there are none; every motor_set is reported on the semihosting console as
 *       `MOTOR t_us,motor,duty_permille,freq_hz` (QEMU's stderr with -semihosting-config
 *       enable=on). Without semihosting the call is skipped by the trap handler.
 * Model slots: two 64 KiB regions of guest RAM at 0x80400000, outside the ELF image, so a guest
 *       reset keeps them (QEMU reloads only the image) but they are lost when QEMU exits.
 * Unit id: 8 bytes kept with the slots (after the cold-boot magic), generated at the cold boot
 *       from the CLINT time, so it lives exactly as long as the slots do.
 * Reset: sifive_test device at 0x100000 (FINISHER_RESET). */
#include <stdint.h>
#include <string.h>

#include "boards_table.h"
#include "coach_core.h"
#include "sha256.h"

#define UART_BASE 0x10000000u
#define UART_RBR 0u
#define UART_THR 0u
#define UART_IER 1u
#define UART_FCR 2u
#define UART_LCR 3u
#define UART_LSR 5u
#define LSR_DR 0x01u
#define LSR_THRE 0x20u
#define MTIME_LO 0x0200BFF8u
#define MTIME_HI 0x0200BFFCu
#define TEST_DEV 0x00100000u
#define FINISHER_RESET 0x7777u
#define QEMU_SLOT_SIZE (64u * 1024u)
#define SLOT_BASE 0x80400000u /* above the linker's RAM region (0x80100000 + 1 MiB), below 128 MiB */
#define RX_RING 1024u

static volatile uint8_t *const uart = (volatile uint8_t *)UART_BASE;
static uint8_t rx_ring[RX_RING];
static uint32_t rx_head, rx_tail;
static uint32_t rx_overruns;
static uint8_t (*const slot_mem)[QEMU_SLOT_SIZE] = (uint8_t (*)[QEMU_SLOT_SIZE])SLOT_BASE;
/* Written after the first erase; RAM is zero at QEMU start-up, so its absence means "cold boot". */
static volatile uint32_t *const slots_magic = (volatile uint32_t *)(SLOT_BASE + 2u * QEMU_SLOT_SIZE);
static uint8_t *const unit_id_mem = (uint8_t *)(SLOT_BASE + 2u * QEMU_SLOT_SIZE + 4u);

static void rx_drain(void) {
    while (uart[UART_LSR] & LSR_DR) {
        uint8_t b = uart[UART_RBR];
        if (rx_head - rx_tail < RX_RING) {
            rx_ring[rx_head++ % RX_RING] = b;
        } else {
            rx_overruns++;
        }
    }
}

static long semihost(long op, const void *arg) {
    register long a0 __asm__("a0") = op;
    register const void *a1 __asm__("a1") = arg;
    /* The three-instruction sequence QEMU recognises; uncompressed and in one cache line. */
    __asm__ volatile(".option push\n.option norvc\n.balign 16\n"
                     "slli zero, zero, 0x1f\nebreak\nsrai zero, zero, 7\n.option pop"
                     : "+r"(a0) : "r"(a1) : "memory");
    return a0;
}

static uint64_t q_now_us(void) {
    uint32_t hi, lo;
    rx_drain();
    do {
        hi = *(volatile uint32_t *)MTIME_HI;
        lo = *(volatile uint32_t *)MTIME_LO;
    } while (hi != *(volatile uint32_t *)MTIME_HI);
    return (((uint64_t)hi << 32) | lo) / 10u;
}

static int q_uart_read(uint8_t *buf, size_t max) {
    size_t n = 0;
    rx_drain();
    while (n < max && rx_tail != rx_head) buf[n++] = rx_ring[rx_tail++ % RX_RING];
    return (int)n;
}

static int q_uart_write(const uint8_t *buf, size_t len) {
    size_t n = 0;
    while (n < len && (uart[UART_LSR] & LSR_THRE)) uart[UART_THR] = buf[n++];
    rx_drain();
    return (int)n;
}

static void put_u64(char **p, uint64_t v) {
    char tmp[21];
    int i = 0;
    do {
        tmp[i++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v);
    while (i) *(*p)++ = tmp[--i];
}

static void q_motor_set(uint8_t motor, uint16_t duty_permille, uint16_t freq_hz) {
    char line[64], *p = line;
    memcpy(p, "MOTOR ", 6);
    p += 6;
    put_u64(&p, q_now_us());
    *p++ = ',';
    put_u64(&p, motor);
    *p++ = ',';
    put_u64(&p, duty_permille);
    *p++ = ',';
    put_u64(&p, freq_hz);
    *p++ = '\n';
    *p = '\0';
    (void)semihost(0x04 /* SYS_WRITE0 */, line);
}

static const uint8_t *q_slot_map(uint8_t slot) { return slot < 2 ? slot_mem[slot] : NULL; }

static int q_slot_erase(uint8_t slot) {
    if (slot >= 2) return -1;
    memset(slot_mem[slot], 0xFF, QEMU_SLOT_SIZE);
    return 0;
}

static int q_slot_write(uint8_t slot, uint32_t offset, const uint8_t *data, size_t len) {
    if (slot >= 2 || offset > QEMU_SLOT_SIZE || len > QEMU_SLOT_SIZE - offset) return -1;
    for (size_t i = 0; i < len; i++) slot_mem[slot][offset + i] &= data[i]; /* NOR semantics */
    return 0;
}

static void q_reset(void) {
    *(volatile uint32_t *)TEST_DEV = FINISHER_RESET;
    for (;;) __asm__ volatile("wfi");
}

static void uart_puts(const char *s) {
    while (*s) {
        while (!(uart[UART_LSR] & LSR_THRE)) {
        }
        uart[UART_THR] = (uint8_t)*s++;
    }
}

static int q_unit_id(uint8_t out[8]) {
    memcpy(out, unit_id_mem, 8);
    return 0;
}

static void make_unit_id(void) {
    uint8_t seed[8], digest[COACH_SHA256_LEN];
    uint64_t t = q_now_us();
    for (unsigned i = 0; i < 8; i++) seed[i] = (uint8_t)(t >> (8u * i));
    coach_sha256(seed, sizeof seed, digest);
    digest[0] = (uint8_t)((digest[0] & 0xFEu) | 0x02u); /* locally administered, unicast: like a MAC */
    memcpy(unit_id_mem, digest, 8);
}

int main(void) {
    static const coach_board_t boards[] = COACH_BOARD_TABLE;
    static coach_core_t core;
    static coach_hal_t hal;
    const coach_board_t *board = &boards[0];
    static const uint32_t cold_magic = 0x51454d55u; /* "QEMU" */

    /* The QEMU target stands in for the rv32 ESP32-C3: use that board's limits. */
    for (size_t i = 0; i < sizeof boards / sizeof boards[0]; i++)
        if (!strcmp(boards[i].id, "esp32-c3")) board = &boards[i];
    uart[UART_IER] = 0x00;
    uart[UART_LCR] = 0x03; /* 8N1 */
    uart[UART_FCR] = 0x01; /* FIFO on, without clearing it: keep bytes that already arrived */
    if (*slots_magic != cold_magic) { /* first boot: RAM is zero, flash would be erased */
        memset(slot_mem, 0xFF, 2u * QEMU_SLOT_SIZE);
        make_unit_id();
        *slots_magic = cold_magic;
    }
    hal.uart_read = q_uart_read;
    hal.uart_write = q_uart_write;
    hal.now_us = q_now_us;
    hal.motor_set = q_motor_set;
    hal.slot_map = q_slot_map;
    hal.slot_erase = q_slot_erase;
    hal.slot_write = q_slot_write;
    hal.slot_size = QEMU_SLOT_SIZE;
    hal.reset = q_reset;
    hal.unit_id = q_unit_id;
    if (coach_core_init(&core, &hal, board) != 0) return 1;

    /* Boot banner, repeated until the host sends its first byte: QEMU drops output while no
     * client has the pty open, so a single banner could be missed. Framed by 0x00 so a host
     * frame decoder treats it as one discarded frame. */
    uint64_t next_banner = 0;
    while (rx_head == rx_tail) {
        uint64_t now = q_now_us();
        if (now >= next_banner) {
            uart[UART_THR] = 0x00;
            uart_puts(coach_core_selftest_ok(&core) ? "\nmoto-edge-coach qemu-virt rv32imc ready selftest=ok\n"
                                                    : "\nmoto-edge-coach qemu-virt rv32imc ready selftest=FAILED\n");
            uart[UART_THR] = 0x00;
            next_banner = now + 200000u;
        }
    }
    for (;;) coach_core_poll(&core);
}
