/* Hardware abstraction: the ONLY way the portable core touches a target.
 *
 * One instance per target (ESP-IDF, POSIX SIL, QEMU rv32), filled once at boot and never changed.
 * Rules for every entry:
 *   - It never blocks for longer than a few microseconds: the control loop calls it at full rate.
 *   - A NULL entry means "unsupported"; the core then answers with a distinct status
 *     (CORE_ERR_UNSUPPORTED inside the core, STATUS_STORAGE_ERROR / STATUS_BAD_STATE on the wire)
 *     instead of calling it.
 */
#ifndef MOTOCOACH_HAL_H
#define MOTOCOACH_HAL_H

#include <stddef.h>
#include <stdint.h>

typedef struct coach_hal {
    /* Copy up to `max` received bytes into buf. Non-blocking: returns the number of bytes read,
     * 0 if none are waiting, <0 on a driver error (the core counts it and carries on). */
    int (*uart_read)(uint8_t *buf, size_t max);
    /* Queue up to `len` bytes for transmission. Non-blocking: returns how many bytes were
     * accepted (may be fewer than len, or 0 when the driver is full), <0 on error.
     * The core keeps the rest in its own TX ring and retries on the next poll. */
    int (*uart_write)(const uint8_t *buf, size_t len);
    /* Monotonic microseconds since an arbitrary origin (boot). Never goes backwards. */
    uint64_t (*now_us)(void);
    /* Drive one motor: motor 0 = left, 1 = right. duty_permille 0..1000 (0 = off).
     * freq_hz is the vibration frequency to render (LRA drive frequency; ERM drivers ignore it
     * because the core already turned it into an on/off pattern). Must take effect immediately. */
    void (*motor_set)(uint8_t motor, uint16_t duty_permille, uint16_t freq_hz);
    /* Readable, memory-mapped view of model slot 0 (A) or 1 (B), slot_size bytes long.
     * NULL if the slot does not exist. The pointer stays valid until the next slot_erase/write. */
    const uint8_t *(*slot_map)(uint8_t slot);
    /* Erase the whole slot to 0xFF. 0 ok, <0 error. May take milliseconds (flash erase). */
    int (*slot_erase)(uint8_t slot);
    /* Program `len` bytes at `offset` within the slot (the region must be erased). 0 ok, <0 error.
     * Must be durable when it returns (a power cut afterwards keeps the bytes). */
    int (*slot_write)(uint8_t slot, uint32_t offset, const uint8_t *data, size_t len);
    /* Bytes per slot; 0 when the target has no slot storage. */
    uint32_t slot_size;
    /* Restart the device. Does not return on real targets; the SIL may return and re-initialise. */
    void (*reset)(void);
    /* Copy the unit's unique, permanent id (PROTO_UNIT_ID_LEN = 8 bytes) into out: ESP32 the
     * factory MAC from eFuse, SIL/QEMU an id generated once and kept with the model slots.
     * 0 ok, <0 error. NULL if the target has none: IDENTITY reports zeros, and a manifest bound
     * to a unit id is refused (STATUS_WRONG_UNIT). */
    int (*unit_id)(uint8_t out[8]);
} coach_hal_t;

#endif /* MOTOCOACH_HAL_H */
