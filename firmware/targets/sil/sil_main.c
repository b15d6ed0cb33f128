/* SIL target: the firmware core on a POSIX host, its UART exposed as a pseudo-terminal.
 *
 *   coach_sil [--link PATH] [--slots FILE] [--motor-log FILE] [--board ID]
 *
 * Prints one line `PTY <path>` on stdout once the pty is ready, then runs in real time.
 * Model slots live in FILE (mmap'd, created erased if missing), so killing the process at any
 * moment is a power cut. The unit id lives in the same file, after the two slots: generated once
 * (from /dev/urandom) the first time the file is used, then kept like a factory-programmed id. Motor outputs are appended to the motor log as
 * `t_us,motor,duty_permille,freq_hz` with t_us on CLOCK_MONOTONIC. */
#define _XOPEN_SOURCE 600
#define _DEFAULT_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "boards_table.h"
#include "coach_core.h"

#define SIL_SLOT_SIZE (64u * 1024u)
#define SIL_ID_PAGE 4096u /* after the slots: the unit id (8 bytes), never erased by the core */
#define SIL_FILE_SIZE (2u * SIL_SLOT_SIZE + SIL_ID_PAGE)

static int g_master = -1;
static FILE *g_motor_log;
static uint8_t *g_slots;            /* 2 * SIL_SLOT_SIZE bytes: file mapping or static memory */
static uint8_t g_slot_mem[SIL_FILE_SIZE];
static volatile sig_atomic_t g_stop;
static int g_reset_requested;
static const coach_board_t g_boards[] = COACH_BOARD_TABLE;

static uint64_t sil_now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int sil_uart_read(uint8_t *buf, size_t max) {
    ssize_t n = read(g_master, buf, max);
    if (n >= 0) return (int)n;
    return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == EIO) ? 0 : -1;
}

static int sil_uart_write(const uint8_t *buf, size_t len) {
    ssize_t n = write(g_master, buf, len);
    if (n >= 0) return (int)n;
    return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : -1;
}

static void sil_motor_set(uint8_t motor, uint16_t duty_permille, uint16_t freq_hz) {
    if (!g_motor_log) return;
    fprintf(g_motor_log, "%llu,%u,%u,%u\n", (unsigned long long)sil_now_us(), motor, duty_permille, freq_hz);
    fflush(g_motor_log); /* a killed process must still leave its last outputs on disk */
}

static const uint8_t *sil_slot_map(uint8_t slot) { return slot < 2 ? g_slots + (size_t)slot * SIL_SLOT_SIZE : NULL; }

static int sil_slot_erase(uint8_t slot) {
    if (slot >= 2) return -1;
    memset(g_slots + (size_t)slot * SIL_SLOT_SIZE, 0xFF, SIL_SLOT_SIZE);
    return 0;
}

static int sil_slot_write(uint8_t slot, uint32_t offset, const uint8_t *data, size_t len) {
    if (slot >= 2 || offset > SIL_SLOT_SIZE || len > SIL_SLOT_SIZE - offset) return -1;
    uint8_t *dst = g_slots + (size_t)slot * SIL_SLOT_SIZE + offset;
    /* NOR flash semantics: programming only clears bits, so writing unerased bytes corrupts them
     * here exactly as it would on the ESP32's flash. */
    for (size_t i = 0; i < len; i++) dst[i] &= data[i];
    return 0;
}

static void sil_reset(void) { g_reset_requested = 1; }

/* The id page starts erased (0xFF): the first boot writes a random id, later boots read it. */
static int sil_unit_id(uint8_t out[8]) {
    uint8_t *id = g_slots + 2u * SIL_SLOT_SIZE;
    int erased = 1;
    for (unsigned i = 0; i < 8; i++) erased &= id[i] == 0xFF;
    if (erased) {
        int fd = open("/dev/urandom", O_RDONLY);
        if (fd < 0 || read(fd, id, 8) != 8) {
            if (fd >= 0) close(fd);
            return -1;
        }
        close(fd);
        id[0] = (uint8_t)((id[0] & 0xFEu) | 0x02u); /* locally administered, unicast: like a MAC */
        msync(g_slots, SIL_FILE_SIZE, MS_SYNC);
    }
    memcpy(out, id, 8);
    return 0;
}

static const coach_hal_t *sil_hal(void) {
    static coach_hal_t hal;
    hal.uart_read = sil_uart_read;
    hal.uart_write = sil_uart_write;
    hal.now_us = sil_now_us;
    hal.motor_set = sil_motor_set;
    hal.slot_map = sil_slot_map;
    hal.slot_erase = sil_slot_erase;
    hal.slot_write = sil_slot_write;
    hal.slot_size = SIL_SLOT_SIZE;
    hal.reset = sil_reset;
    hal.unit_id = sil_unit_id;
    return &hal;
}

static int map_slots_file(const char *path) {
    int fd = open(path, O_RDWR | O_CREAT, 0644);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) return -1;
    if ((size_t)st.st_size < SIL_FILE_SIZE) {
        /* A fresh file is erased flash (0xFF), not zeros. */
        static uint8_t ff[4096];
        memset(ff, 0xFF, sizeof ff);
        if (lseek(fd, st.st_size, SEEK_SET) < 0) return -1;
        for (size_t n = (size_t)st.st_size; n < SIL_FILE_SIZE;) {
            size_t k = SIL_FILE_SIZE - n < sizeof ff ? SIL_FILE_SIZE - n : sizeof ff;
            ssize_t w = write(fd, ff, k);
            if (w <= 0) return -1;
            n += (size_t)w;
        }
    }
    void *m = mmap(NULL, SIL_FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED) return -1;
    g_slots = m;
    return 0;
}

static int open_pty(char *path, size_t cap, int *slave) {
    struct termios t;
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    if (m < 0 || grantpt(m) != 0 || unlockpt(m) != 0) return -1;
    const char *name = ptsname(m);
    if (!name || strlen(name) >= cap) return -1;
    strcpy(path, name);
    /* Keep the slave open and raw: a fresh pty is cooked (ECHO, CR/LF mapping) and would mangle
     * binary frames; holding one fd open keeps these settings until a client opens the port. */
    *slave = open(path, O_RDWR | O_NOCTTY);
    if (*slave < 0 || tcgetattr(*slave, &t) != 0) return -1;
    cfmakeraw(&t);
    if (tcsetattr(*slave, TCSANOW, &t) != 0) return -1;
    if (fcntl(m, F_SETFL, fcntl(m, F_GETFL) | O_NONBLOCK) != 0) return -1;
    return m;
}

static void on_signal(int sig) {
    (void)sig;
    g_stop = 1;
}

static int usage(const char *argv0) {
    fprintf(stderr, "usage: %s [--link PATH] [--slots FILE] [--motor-log FILE] [--board ID]\n", argv0);
    return 2;
}

int main(int argc, char **argv) {
    const char *link_path = NULL, *slots_path = NULL, *motor_path = NULL, *board_id = NULL;
    char pty_path[128];
    int slave = -1;
    const coach_board_t *board = &g_boards[0];
    static coach_core_t core;

    for (int i = 1; i < argc; i++) {
        const char **dst = !strcmp(argv[i], "--link") ? &link_path
                           : !strcmp(argv[i], "--slots") ? &slots_path
                           : !strcmp(argv[i], "--motor-log") ? &motor_path
                           : !strcmp(argv[i], "--board") ? &board_id : NULL;
        if (!dst || i + 1 >= argc) return usage(argv[0]);
        *dst = argv[++i];
    }
    if (board_id) {
        board = NULL;
        for (size_t i = 0; i < sizeof g_boards / sizeof g_boards[0]; i++)
            if (!strcmp(g_boards[i].id, board_id)) board = &g_boards[i];
        if (!board) {
            fprintf(stderr, "coach_sil: unknown board '%s' (see boards/)\n", board_id);
            return 2;
        }
    }
    g_slots = g_slot_mem;
    memset(g_slot_mem, 0xFF, sizeof g_slot_mem);
    if (slots_path && map_slots_file(slots_path) != 0) {
        fprintf(stderr, "coach_sil: cannot use slots file %s: %s\n", slots_path, strerror(errno));
        return 1;
    }
    if (motor_path && !(g_motor_log = fopen(motor_path, "a"))) {
        fprintf(stderr, "coach_sil: cannot open motor log %s: %s\n", motor_path, strerror(errno));
        return 1;
    }
    g_master = open_pty(pty_path, sizeof pty_path, &slave);
    if (g_master < 0) {
        fprintf(stderr, "coach_sil: cannot open a pseudo-terminal: %s\n", strerror(errno));
        return 1;
    }
    if (link_path) {
        unlink(link_path);
        if (symlink(pty_path, link_path) != 0) {
            fprintf(stderr, "coach_sil: cannot link %s: %s\n", link_path, strerror(errno));
            return 1;
        }
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);

    const coach_hal_t *hal = sil_hal();
    if (coach_core_init(&core, hal, board) != 0) return 1;
    fprintf(stderr, "coach_sil: board %s, self-test %s\n", board->id, coach_core_selftest_ok(&core) ? "ok" : "FAILED");
    printf("PTY %s\n", pty_path);
    fflush(stdout);

    while (!g_stop) {
        struct pollfd pfd = {g_master, POLLIN, 0};
        (void)poll(&pfd, 1, 1); /* wake on input, or every ms for the tick and failsafe */
        coach_core_poll(&core);
        if (g_reset_requested) {
            g_reset_requested = 0;
            if (coach_core_init(&core, hal, board) != 0) return 1; /* a reboot: state and slots re-scanned */
        }
    }
    if (link_path) unlink(link_path);
    close(slave);
    return 0;
}
