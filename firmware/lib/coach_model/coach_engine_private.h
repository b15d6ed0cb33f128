/* Helpers shared by coach_engine.c and coach_model_load.c; not part of the engine's API. */
#ifndef COACH_ENGINE_PRIVATE_H
#define COACH_ENGINE_PRIVATE_H

#include "coach_engine.h"

#define RETURN_IF_ERROR(expr)          \
  do {                                 \
    coach_status_t status_ = (expr);   \
    if (status_ != COACH_OK) {         \
      return status_;                  \
    }                                  \
  } while (0)
#define ENSURE(cond, err) \
  do {                    \
    if (!(cond)) {        \
      return (err);       \
    }                     \
  } while (0)

#endif /* COACH_ENGINE_PRIVATE_H */
