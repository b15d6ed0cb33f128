/* Flash an application pays for the engine, everything included: linked once with
 * ENGINE_ALL (every engine entry point a firmware calls, so the CMB1 loader, SHA-256, the
 * float input quantizer and the soft-float / roundf code they pull in) and once without;
 * the difference of the two images is the engine's all-in flash (quantization/cbuild.py). */
#include <stddef.h>
#include <stdint.h>

#include "coach_engine.h"

/* volatile: the compiler must not fold the calls away or see the inputs */
static const uint8_t *volatile blob_ptr;
static volatile size_t blob_len;
static volatile float telemetry[COACH_MAX_IO];
static volatile int sink;

int main(void) {
#ifdef ENGINE_ALL
  static coach_model_t loaded;
  const coach_model_t *m = &coach_default_model;
  float tel[COACH_MAX_IO], act[COACH_MAX_IO];
  int8_t in[COACH_MAX_IO], out[COACH_MAX_IO];
  uint8_t clamped = 0;
  for (int i = 0; i < COACH_MAX_IO; ++i) tel[i] = telemetry[i];
  if (coach_model_load(blob_ptr, blob_len, &loaded) == COACH_OK) m = &loaded;
  sink = (int)coach_model_selftest(m);
  sink += (int)coach_model_quantize_input(m, tel, in, &clamped);
  sink += (int)coach_model_invoke(m, in, out);
  coach_model_dequantize_output(m, out, act);
  sink += (int)act[0] + coach_model_sha256(m)[0] + coach_model_id(m)[0];
#else
  sink = (int)telemetry[0] + (int)blob_len + (blob_ptr != NULL);
#endif
  return sink;
}
