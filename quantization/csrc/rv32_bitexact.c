/* The rv32imc build of the engine on many int8 vectors, for the bit-exactness test against
 * tflite_micro (quantization/tests/test_rv32_bitexact.py). Under QEMU with semihosting, reads
 * int8 input rows from the host file vectors.bin (n_inputs bytes each), runs each through the
 * factory model and writes the int8 outputs to outputs.bin (n_outputs bytes each), in the
 * current directory of the QEMU process. Exit 0 when every row was read, run and written. */
#include <stdio.h>

#include "coach_engine.h"

enum { CHUNK = 1024 }; /* rows per read: fewer semihosting calls */

int main(void) {
  const coach_model_t *m = &coach_default_model;
  static int8_t in[CHUNK * COACH_MAX_IO], out[CHUNK * COACH_MAX_IO];
  FILE *src = fopen("vectors.bin", "rb");
  FILE *dst = fopen("outputs.bin", "wb");
  if (src == NULL || dst == NULL) return 2;
  size_t rows;
  long total = 0;
  while ((rows = fread(in, (size_t)m->n_inputs, CHUNK, src)) > 0) {
    for (size_t r = 0; r < rows; ++r) {
      if (coach_model_invoke(m, in + r * m->n_inputs, out + r * m->n_outputs) != COACH_OK) return 3;
    }
    if (fwrite(out, (size_t)m->n_outputs, rows, dst) != rows) return 4;
    total += (long)rows;
  }
  fclose(src);
  if (fclose(dst) != 0) return 4;
  printf("BITEXACT_VECTORS %ld\n", total);
  return 0;
}
