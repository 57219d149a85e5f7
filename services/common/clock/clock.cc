#include "services/common/clock/clock.h"

namespace apogee {

RealClock* RealClock::Default() {
  static RealClock* clock = new RealClock();  // never destroyed: used at exit
  return clock;
}

}  // namespace apogee
