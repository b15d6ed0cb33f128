/* Runs every unit test; the exit status is the number of failed checks (0 = pass), which QEMU
 * semihosting turns into its own exit status. */
#include "ctest.h"

int ctest_failures;
int ctest_checks;

extern const ctest_case_t ctest_cases[];
extern const int ctest_case_count;
extern const ctest_case_t ctest_update_cases[];
extern const int ctest_update_case_count;

static void run(const ctest_case_t *cases, int count) {
    for (int i = 0; i < count; i++) {
        int before = ctest_failures;
        cases[i].fn();
        printf("%s %s\n", ctest_failures == before ? "ok  " : "FAIL", cases[i].name);
    }
}

int main(void) {
    run(ctest_cases, ctest_case_count);
    run(ctest_update_cases, ctest_update_case_count);
    printf("%d checks, %d failed\n", ctest_checks, ctest_failures);
    return ctest_failures > 100 ? 100 : ctest_failures;
}
