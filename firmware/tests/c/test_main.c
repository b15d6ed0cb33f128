/* Runs every unit test; the exit status is the number of failed checks (0 = pass), which QEMU
 * semihosting turns into its own exit status. */
#include "ctest.h"

int ctest_failures;
int ctest_checks;

extern const ctest_case_t ctest_cases[];
extern const int ctest_case_count;

int main(void) {
    for (int i = 0; i < ctest_case_count; i++) {
        int before = ctest_failures;
        ctest_cases[i].fn();
        printf("%s %s\n", ctest_failures == before ? "ok  " : "FAIL", ctest_cases[i].name);
    }
    printf("%d checks, %d failed\n", ctest_checks, ctest_failures);
    return ctest_failures > 100 ? 100 : ctest_failures;
}
