/* ESP-IDF 5 HAL: the portable core on an ESP32 board (board constants from board_<id>.h).
 *
 * UART: driver with an event queue; the loop task blocks on the queue for at most 1 ms, so
 *       frames are handled as they arrive and the 20 Hz tick/failsafe keep running.
 * Motors: ERM boards use LEDC PWM at the board's carrier (> 20 kHz); LRA boards drive a DRV2605
 *       per motor in real-time-playback mode (amplitude) with its open-loop LRA period set from
 *       the requested frequency.
 * Time: esp_timer_get_time(). Watchdog: the loop task is subscribed to the task watchdog.
 * Model slots: data partitions "model_a"/"model_b" (partitions_ab.csv), memory-mapped. A slot is
 *       erased one 4 KB sector at a time with both motors held off, feeding the task watchdog
 *       between sectors (a whole 64 KB erase in one call can outlast the 1 s watchdog).
 * OTA: the running image is marked valid only after the model self-test passed.
 * Unit id: the factory MAC burnt into eFuse (esp_efuse_mac_get_default), 6 bytes then 2 zero bytes.
 * Signed updates: Ed25519 from the espressif/libsodium managed component (idf_component.yml). */
#include <string.h>

#include "driver/gpio.h"
#include "driver/ledc.h"
#include "driver/uart.h"
#include "esp_mac.h"
#include "esp_ota_ops.h"
#include "esp_partition.h"
#include "esp_system.h"
#include "esp_task_wdt.h"
#include "esp_timer.h"
#include "freertos/FreeRTOS.h"
#include "freertos/queue.h"
#include "freertos/task.h"

#include "coach_core.h"
#include COACH_BOARD_HEADER

#if BOARD_HAS_DRV2605
#include "driver/i2c_master.h" /* only boards with a DRV2605 use I2C */
#endif

#define RX_BUF 2048
/* No driver TX buffer: e_uart_write uses uart_tx_chars, which writes straight into the hardware
 * TX FIFO and never touches a driver ring; the core keeps its own TX ring and retries the rest. */
#define TX_BUF 0
#define SLOT_ERASE_STEP 4096u /* one flash sector */
#define DRV2605_REG_MODE 0x01
#define DRV2605_REG_RTP 0x02
#define DRV2605_REG_FEEDBACK 0x1A
#define DRV2605_REG_CONTROL3 0x1D
#define DRV2605_REG_LRA_PERIOD 0x20

static QueueHandle_t uart_events;
static const esp_partition_t *slot_part[2];
static const uint8_t *slot_ptr[2];
static esp_partition_mmap_handle_t slot_map_handle[2];
static const coach_board_t board = BOARD_CONFIG_INIT;
#if BOARD_HAS_DRV2605
static i2c_master_dev_handle_t drv_dev[2];
#endif

static int e_uart_read(uint8_t *buf, size_t max) {
    int n = uart_read_bytes(BOARD_UART_NUM, buf, max, 0);
    return n < 0 ? -1 : n;
}

static int e_uart_write(const uint8_t *buf, size_t len) {
    /* uart_tx_chars never waits: it copies what fits into the hardware TX FIFO and returns that count. */
    int n = uart_tx_chars(BOARD_UART_NUM, (const char *)buf, len);
    return n < 0 ? -1 : n;
}

static uint64_t e_now_us(void) { return (uint64_t)esp_timer_get_time(); }

#if BOARD_HAS_DRV2605
static void drv_write(uint8_t motor, uint8_t reg, uint8_t val) {
    const uint8_t b[2] = {reg, val};
    if (drv_dev[motor]) (void)i2c_master_transmit(drv_dev[motor], b, sizeof b, 2 /* ms */);
}
#endif

static void e_motor_set(uint8_t motor, uint16_t duty_permille, uint16_t freq_hz) {
#if BOARD_HAS_DRV2605
    if (motor > 1) return;
    if (freq_hz) drv_write(motor, DRV2605_REG_LRA_PERIOD, (uint8_t)(1000000u / freq_hz / 98u)); /* 98.46 us units */
    drv_write(motor, DRV2605_REG_RTP, (uint8_t)(duty_permille * 127u / 1000u));
#else
    (void)freq_hz; /* an ERM's frequency follows its voltage; the core already made the pattern */
    ledc_channel_t ch = motor == 0 ? BOARD_PWM_CHANNEL_LEFT : BOARD_PWM_CHANNEL_RIGHT;
    uint32_t max = (1u << BOARD_PWM_RESOLUTION_BITS) - 1u;
    ledc_set_duty(LEDC_LOW_SPEED_MODE, ch, duty_permille * max / 1000u);
    ledc_update_duty(LEDC_LOW_SPEED_MODE, ch);
#endif
}

static const uint8_t *e_slot_map(uint8_t slot) { return slot < 2 ? slot_ptr[slot] : NULL; }

static int e_slot_erase(uint8_t slot) {
    if (slot >= 2 || !slot_part[slot]) return -1;
    /* The control loop is blocked while flash erases: hold both motors off, and erase sector by
     * sector so the task watchdog is fed between pieces. The core re-applies the pattern afterwards. */
    e_motor_set(0, 0, 0);
    e_motor_set(1, 0, 0);
    for (uint32_t off = 0; off < slot_part[slot]->size; off += SLOT_ERASE_STEP) {
        if (esp_partition_erase_range(slot_part[slot], off, SLOT_ERASE_STEP) != ESP_OK) return -1;
        (void)esp_task_wdt_reset();
    }
    return 0;
}

static int e_slot_write(uint8_t slot, uint32_t offset, const uint8_t *data, size_t len) {
    if (slot >= 2 || !slot_part[slot]) return -1;
    return esp_partition_write(slot_part[slot], offset, data, len) == ESP_OK ? 0 : -1;
}

static void e_reset(void) { esp_restart(); }

static void init_uart(void) {
    const uart_config_t cfg = {.baud_rate = BOARD_UART_BAUD, .data_bits = UART_DATA_8_BITS,
                               .parity = UART_PARITY_DISABLE, .stop_bits = UART_STOP_BITS_1,
                               .flow_ctrl = UART_HW_FLOWCTRL_DISABLE, .source_clk = UART_SCLK_DEFAULT};
    ESP_ERROR_CHECK(uart_driver_install(BOARD_UART_NUM, RX_BUF, TX_BUF, 16, &uart_events, 0));
    ESP_ERROR_CHECK(uart_param_config(BOARD_UART_NUM, &cfg));
    ESP_ERROR_CHECK(uart_set_pin(BOARD_UART_NUM, BOARD_UART_TX_PIN, BOARD_UART_RX_PIN, UART_PIN_NO_CHANGE,
                                 UART_PIN_NO_CHANGE));
}

static void init_motors(void) {
#if BOARD_HAS_DRV2605
    const int ports[2] = {BOARD_DRV2605_LEFT_I2C, BOARD_DRV2605_RIGHT_I2C};
    const int sda[2] = {BOARD_DRV2605_LEFT_SDA, BOARD_DRV2605_RIGHT_SDA};
    const int scl[2] = {BOARD_DRV2605_LEFT_SCL, BOARD_DRV2605_RIGHT_SCL};
    for (uint8_t i = 0; i < 2; i++) {
        /* One bus per DRV2605: its address is fixed, so the two cannot share a bus. */
        const i2c_master_bus_config_t bus_cfg = {.i2c_port = ports[i], .sda_io_num = sda[i], .scl_io_num = scl[i],
                                                 .clk_source = I2C_CLK_SRC_DEFAULT, .glitch_ignore_cnt = 7,
                                                 .flags.enable_internal_pullup = true};
        const i2c_device_config_t dev_cfg = {.dev_addr_length = I2C_ADDR_BIT_LEN_7,
                                             .device_address = BOARD_DRV2605_ADDRESS, .scl_speed_hz = 400000};
        i2c_master_bus_handle_t bus;
        ESP_ERROR_CHECK(i2c_new_master_bus(&bus_cfg, &bus));
        ESP_ERROR_CHECK(i2c_master_bus_add_device(bus, &dev_cfg, &drv_dev[i]));
        drv_write(i, DRV2605_REG_MODE, 0x00);      /* out of standby */
        drv_write(i, DRV2605_REG_FEEDBACK, 0xB6);  /* LRA mode */
        drv_write(i, DRV2605_REG_CONTROL3, 0xA1);  /* open-loop LRA, RTP unsigned */
        drv_write(i, DRV2605_REG_RTP, 0x00);
        drv_write(i, DRV2605_REG_MODE, 0x05);      /* real-time playback */
    }
    const int en[2] = {BOARD_MOTOR_LEFT_PIN, BOARD_MOTOR_RIGHT_PIN};
    for (int i = 0; i < 2; i++) {
        gpio_set_direction(en[i], GPIO_MODE_OUTPUT);
        gpio_set_level(en[i], 1);
    }
#else
    const ledc_timer_config_t t = {.speed_mode = LEDC_LOW_SPEED_MODE,
                                   .duty_resolution = (ledc_timer_bit_t)BOARD_PWM_RESOLUTION_BITS,
                                   .timer_num = LEDC_TIMER_0, .freq_hz = BOARD_PWM_CARRIER_HZ,
                                   .clk_cfg = LEDC_AUTO_CLK};
    ESP_ERROR_CHECK(ledc_timer_config(&t));
    const int pins[2] = {BOARD_MOTOR_LEFT_PIN, BOARD_MOTOR_RIGHT_PIN};
    const ledc_channel_t chans[2] = {BOARD_PWM_CHANNEL_LEFT, BOARD_PWM_CHANNEL_RIGHT};
    for (int i = 0; i < 2; i++) {
        const ledc_channel_config_t c = {.gpio_num = pins[i], .speed_mode = LEDC_LOW_SPEED_MODE,
                                         .channel = chans[i], .timer_sel = LEDC_TIMER_0, .duty = 0, .hpoint = 0};
        ESP_ERROR_CHECK(ledc_channel_config(&c));
    }
#endif
}

static uint32_t init_slots(void) {
    const char *names[2] = {"model_a", "model_b"};
    uint32_t size = 0;
    for (int i = 0; i < 2; i++) {
        slot_part[i] = esp_partition_find_first(ESP_PARTITION_TYPE_DATA, ESP_PARTITION_SUBTYPE_ANY, names[i]);
        if (!slot_part[i] || esp_partition_mmap(slot_part[i], 0, slot_part[i]->size, ESP_PARTITION_MMAP_DATA,
                                                (const void **)&slot_ptr[i], &slot_map_handle[i]) != ESP_OK)
            return 0; /* no slots: the core reports it and keeps the factory model */
        size = slot_part[i]->size;
    }
    return size;
}

static int e_unit_id(uint8_t out[8]) {
    uint8_t mac[6];
    if (esp_efuse_mac_get_default(mac) != ESP_OK) return -1;
    memcpy(out, mac, sizeof mac);
    out[6] = 0;
    out[7] = 0;
    return 0;
}

static void control_task(void *arg) {
    static coach_core_t core;
    static coach_hal_t hal = {e_uart_read, e_uart_write, e_now_us, e_motor_set, e_slot_map,
                              e_slot_erase, e_slot_write, 0, e_reset, e_unit_id};
    uart_event_t ev;
    (void)arg;
    hal.slot_size = init_slots();
    if (coach_core_init(&core, &hal, &board) != 0) esp_restart();
    if (coach_core_selftest_ok(&core)) {
        /* Only a firmware whose model passes its golden vectors may stay installed. */
        (void)esp_ota_mark_app_valid_cancel_rollback();
    }
    ESP_ERROR_CHECK(esp_task_wdt_add(NULL));
    for (;;) {
        ev.type = UART_EVENT_MAX;
        (void)xQueueReceive(uart_events, &ev, pdMS_TO_TICKS(1)); /* wake on RX or after 1 ms */
        if (ev.type == UART_FIFO_OVF || ev.type == UART_BUFFER_FULL) {
            uart_flush_input(BOARD_UART_NUM); /* the decoder resyncs at the next 0x00 */
            xQueueReset(uart_events);
        }
        coach_core_poll(&core);
        esp_task_wdt_reset();
    }
}

void app_main(void) {
    init_uart();
    init_motors();
    xTaskCreate(control_task, "coach", 8192, NULL, configMAX_PRIORITIES - 2, NULL);
}
