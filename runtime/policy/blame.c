#include "policy/blame.h"

#include "impulse.pb-c.h"

int imp_blame(int code, int named, uint32_t crashed_gen, uint32_t call_gen) {
  if (!named || (code != IMPULSE__ERROR_CODE__CRASHED &&
                 code != IMPULSE__ERROR_CODE__OUT_OF_MEMORY))
    return code;
  return (int32_t)(call_gen - crashed_gen) <= 0
             ? code
             : IMPULSE__ERROR_CODE__UNAVAILABLE;
}
